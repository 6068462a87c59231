"""The MOF parser: recursive descent over the lexer's tokens, producing raw declarations.

The parser knows MOF syntax only (DSP0221, as the DMTF CIM Schema writes it). It hands each complete
production (pragma, qualifier declaration, class, instance) to a handler, which checks its meaning.
A syntax error is reported to the handler and the parser skips to the end of the broken property or
production, so one run reports several errors.
"""

from __future__ import annotations

from typing import Any, Protocol

from .lexer import EOF_TOKEN, EscapeError, Source, describe, unescape

NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "NO_VALUE"})()
"""The value of a qualifier written without one (``[Key]``) and the default of a property without ``=``."""


class Char16(str):
    """A char16 literal (``'a'``), kept apart from a one-character string."""

    __slots__ = ()


class AliasRef:
    """A use of an instance alias (``$Disk``) as a value."""

    __slots__ = ("index", "name")

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index

    def __repr__(self) -> str:
        return f"AliasRef({self.name!r})"


# A qualifier as written: (name, value or NO_VALUE, flavor names or None, token index).
RawQualifier = tuple[str, Any, "list[str] | None", int]


class RawProperty:
    __slots__ = (
        "array",
        "default",
        "default_index",
        "index",
        "name",
        "quals",
        "ref",
        "type_index",
        "type_name",
    )

    def __init__(self, quals: list[RawQualifier] | None, type_name: str, type_index: int, ref: bool,
                 name: str, index: int, array: int | None, default: Any, default_index: int) -> None:
        self.quals = quals
        self.type_name = type_name
        self.type_index = type_index
        self.ref = ref
        self.name = name
        self.index = index
        self.array = array  # None: scalar; 0: variable-length array; n: fixed size n
        self.default = default
        self.default_index = default_index


class RawParameter:
    __slots__ = ("array", "index", "name", "quals", "ref", "type_index", "type_name")

    def __init__(self, quals: list[RawQualifier] | None, type_name: str, type_index: int, ref: bool,
                 name: str, index: int, array: int | None) -> None:
        self.quals = quals
        self.type_name = type_name
        self.type_index = type_index
        self.ref = ref
        self.name = name
        self.index = index
        self.array = array


class RawMethod:
    __slots__ = ("index", "name", "params", "quals", "ref", "type_index", "type_name")

    def __init__(self, quals: list[RawQualifier] | None, type_name: str, type_index: int, ref: bool,
                 name: str, index: int, params: list[RawParameter]) -> None:
        self.quals = quals
        self.type_name = type_name
        self.type_index = type_index
        self.ref = ref
        self.name = name
        self.index = index
        self.params = params


class RawClass:
    __slots__ = ("features", "index", "keyword", "name", "quals", "super_index", "superclass")

    def __init__(self, quals: list[RawQualifier] | None, name: str, index: int, superclass: str | None,
                 super_index: int, features: list[RawProperty | RawMethod], keyword: str) -> None:
        self.quals = quals
        self.name = name
        self.index = index
        self.superclass = superclass
        self.super_index = super_index
        self.features = features
        self.keyword = keyword  # "class" or "association"


class RawInstance:
    __slots__ = ("alias", "alias_index", "class_name", "index", "props")

    def __init__(self, class_name: str, index: int, alias: str | None, alias_index: int,
                 props: list[tuple[str, Any, int, int]]) -> None:
        self.class_name = class_name
        self.index = index
        self.alias = alias
        self.alias_index = alias_index
        self.props = props  # (name, value, name token index, value token index)


class RawQualifierDecl:
    __slots__ = (
        "array",
        "default",
        "default_index",
        "flavors",
        "index",
        "name",
        "scopes",
        "type_index",
        "type_name",
    )

    def __init__(self, name: str, index: int, type_name: str, type_index: int, array: int | None,
                 default: Any, default_index: int, scopes: list[tuple[str, int]],
                 flavors: list[tuple[str, int]]) -> None:
        self.name = name
        self.index = index
        self.type_name = type_name
        self.type_index = type_index
        self.array = array
        self.default = default
        self.default_index = default_index
        self.scopes = scopes
        self.flavors = flavors


class Handler(Protocol):
    """What the parser reports to (the compiler)."""

    def error(self, source: Source, index: int, message: str) -> None: ...

    def pragma(self, source: Source, name: str, index: int, args: list[tuple[Any, int]]) -> None: ...

    def qualifier_decl(self, source: Source, decl: RawQualifierDecl) -> None: ...

    def class_decl(self, source: Source, decl: RawClass) -> None: ...

    def instance_decl(self, source: Source, decl: RawInstance) -> None: ...


class MOFSyntaxError(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


FLAVORS = frozenset({"enableoverride", "disableoverride", "tosubclass", "restricted", "translatable",
                     "toinstance"})


def is_identifier(tok: str) -> bool:
    return bool(tok) and (tok[0].isalpha() or tok[0] == "_")


def parse_number(tok: str) -> int | float:
    """The value of a MOF numeric literal: decimal, hex (``0x1F``), octal (``017``), binary (``101b``), real."""
    if "x" in tok or "X" in tok:
        return int(tok, 16)
    last = tok[-1]
    if last == "b" or last == "B":
        return int(tok[:-1], 2)
    if "." in tok or "e" in tok or "E" in tok:
        return float(tok)
    digits = tok.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0":
        return int(tok, 8)
    return int(tok)


class Parser:
    """Parses one :class:`Source` and reports its productions to a :class:`Handler`."""

    def __init__(self, source: Source, handler: Handler) -> None:
        self.source = source
        self.handler = handler
        self.toks = source.tokens
        self.i = 0

    # --- driver ------------------------------------------------------------------------------
    def parse(self) -> None:
        toks = self.toks
        while toks[self.i] != EOF_TOKEN:
            try:
                self._production()
            except MOFSyntaxError as exc:
                self.handler.error(self.source, exc.index, exc.message)
                self._skip_production(exc.index)

    def _skip_production(self, index: int) -> None:
        """Skip past the ``;`` that ends the broken production (braces balanced) or to the next pragma."""
        toks = self.toks
        depth = 0
        i = index
        while True:
            t = toks[i]
            if t == EOF_TOKEN:
                break
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
            elif t == ";" and depth <= 0:
                i += 1
                break
            elif t[0] == "#" and depth <= 0 and i > index:
                break
            i += 1
        self.i = max(i, index + 1) if toks[index] != EOF_TOKEN else index

    def _skip_feature(self, index: int) -> None:
        """Inside a class or instance body: skip past the broken element's ``;`` or up to the closing ``}``."""
        toks = self.toks
        depth = 0
        i = index
        while True:
            t = toks[i]
            if t == EOF_TOKEN:
                break
            if t == "{":
                depth += 1
            elif t == "}":
                if depth == 0:
                    break
                depth -= 1
            elif t == ";" and depth == 0:
                i += 1
                break
            i += 1
        self.i = i

    # --- helpers -----------------------------------------------------------------------------
    def _fail(self, expected: str, index: int | None = None) -> MOFSyntaxError:
        i = self.i if index is None else index
        return MOFSyntaxError(i, f"expected {expected}, found {describe(self.toks[i])}")

    def _expect(self, tok: str) -> None:
        if self.toks[self.i] != tok:
            raise self._fail(f"'{tok}'")
        self.i += 1

    def _ident(self, what: str) -> tuple[str, int]:
        i = self.i
        t = self.toks[i]
        if not is_identifier(t):
            raise self._fail(what)
        self.i = i + 1
        return t, i

    def _string(self, what: str) -> str:
        toks = self.toks
        t = toks[self.i]
        if t[:1] != '"' or len(t) < 2:
            raise self._fail(what)
        start = i = self.i
        parts = []
        while t[:1] == '"' and len(t) >= 2:
            parts.append(t[1:-1])
            i += 1
            t = toks[i]
        self.i = i
        return self._unescape("".join(parts), start)  # an escape never spans two literals

    def _unescape(self, body: str, index: int) -> str:
        try:
            return unescape(body)
        except EscapeError as exc:
            raise MOFSyntaxError(index, str(exc)) from None

    # --- values ------------------------------------------------------------------------------
    def _value(self, allow_instance: bool = False) -> Any:
        """A constant, an array ``{…}``, an alias ``$a`` or (in instances) an embedded ``instance of``."""
        toks = self.toks
        i = self.i
        t = toks[i]
        c = t[:1]
        if c == '"' and len(t) >= 2:
            if "\\" not in t and toks[i + 1][:1] != '"':
                self.i = i + 1
                return t[1:-1]
            return self._string("a string")
        if c == "{":
            self.i = i = i + 1
            items: list[Any] = []
            if toks[i] == "}":
                self.i = i + 1
                return items
            while True:
                t = toks[i]
                if t[:1] == '"' and len(t) >= 2 and "\\" not in t and toks[i + 1][:1] != '"':
                    items.append(t[1:-1])  # the common case (ValueMap, Values): one plain string literal
                    self.i = i = i + 1
                else:
                    items.append(self._value(allow_instance))
                    i = self.i
                t = toks[i]
                if t == ",":
                    self.i = i = i + 1
                elif t == "}":
                    self.i = i + 1
                    return items
                else:
                    raise self._fail("',' or '}' in the array value")
        if c and (c.isdigit() or (c in "+-." and len(t) > 1)):
            self.i = i + 1
            try:
                return parse_number(t)
            except ValueError:
                raise MOFSyntaxError(i, f"{describe(t)} is not a number") from None
        if c == "'" and len(t) >= 3:
            self.i = i + 1
            body = self._unescape(t[1:-1], i)
            if len(body) != 1:
                raise MOFSyntaxError(i, f"{t} is not a single char16 character")
            return Char16(body)
        if c == "$" and len(t) > 1:
            self.i = i + 1
            return AliasRef(t[1:], i)
        low = t.lower()
        if low == "true":
            self.i = i + 1
            return True
        if low == "false":
            self.i = i + 1
            return False
        if low == "null":
            self.i = i + 1
            return None
        if allow_instance and low == "instance":
            return self._instance(nested=True)
        raise self._fail("a value")

    # --- productions -------------------------------------------------------------------------
    def _production(self) -> None:
        toks = self.toks
        t = toks[self.i]
        if t[:1] == "#":
            self._pragma()
            return
        quals = self._qualifier_list() if t == "[" else None
        start = self.i
        low = toks[start].lower()
        if low == "class" or low == "association":
            self._class(quals, low)
        elif low == "instance":
            self._instance_production(quals)
        elif low == "qualifier" and quals is None:
            self._qualifier_decl()
        elif low in ("structure", "enumeration", "value", "indication"):
            raise MOFSyntaxError(start, f"MOF {low} declarations are not supported (MI has classes and instances)")
        else:
            what = "'class', 'instance of', 'qualifier' or '#pragma'"
            if quals is not None:
                what = "'class', 'association' or 'instance of' after the qualifier list"
            raise self._fail(what)

    def _pragma(self) -> None:
        start = self.i
        if self.toks[start].replace(" ", "").replace("\t", "") != "#pragma":
            raise self._fail("'#pragma'")
        self.i += 1
        name, name_index = self._ident("a pragma name")
        args: list[tuple[Any, int]] = []
        if self.toks[self.i] == "(":
            self.i += 1
            while self.toks[self.i] != ")":
                idx = self.i
                args.append((self._value(), idx))
                if self.toks[self.i] == ",":
                    self.i += 1
                elif self.toks[self.i] != ")":
                    raise self._fail("',' or ')' in the pragma")
            self.i += 1
        self.handler.pragma(self.source, name, name_index, args)

    def _qualifier_list(self) -> list[RawQualifier]:
        toks = self.toks
        self.i += 1  # "["
        out: list[RawQualifier] = []
        while True:
            name_index = i = self.i
            name = toks[i]
            if not is_identifier(name):
                raise self._fail("a qualifier name")
            i += 1
            t = toks[i]
            value: Any = NO_VALUE
            if t == "(":
                v = toks[i + 1]
                if v[:1] == '"' and toks[i + 2] == ")" and len(v) >= 2 and "\\" not in v:
                    value = v[1:-1]  # the common case: Description("..."), one plain literal
                    i += 2
                    self.i = i
                else:
                    self.i = i + 1
                    value = self._value()
                    i = self.i
                if toks[i] != ")":
                    raise self._fail("')' after the qualifier value")
                i += 1
                t = toks[i]
            elif t == "{":
                self.i = i
                value = self._value()
                i = self.i
                t = toks[i]
            flavors: list[str] | None = None
            if t == ":":
                flavors = []
                i += 1
                while toks[i].lower() in FLAVORS:
                    flavors.append(toks[i])
                    i += 1
                if not flavors:
                    raise self._fail("a flavor (EnableOverride, DisableOverride, ToSubclass, Restricted, "
                                     "Translatable)", i)
                t = toks[i]
            out.append((name, value, flavors, name_index))
            if t == ",":
                self.i = i + 1
            elif t == "]":
                self.i = i + 1
                return out
            else:
                raise self._fail("',' or ']' in the qualifier list", i)

    def _array_suffix(self) -> int | None:
        toks = self.toks
        if toks[self.i] != "[":
            return None
        i = self.i + 1
        t = toks[i]
        if t == "]":
            self.i = i + 1
            return 0
        if t.isdigit():
            if toks[i + 1] != "]":
                raise self._fail("']' after the array size", i + 1)
            self.i = i + 2
            return int(t)
        raise self._fail("an array size or ']'", i)

    def _class(self, quals: list[RawQualifier] | None, keyword: str) -> None:
        toks = self.toks
        self.i += 1
        name, index = self._ident("a class name")
        if toks[self.i].lower() == "as":  # MOF 2 allowed an alias on a class; it names nothing in MI
            self.i += 1
            if toks[self.i][:1] != "$":
                raise self._fail("an alias ($name)")
            self.i += 1
        superclass = None
        super_index = -1
        if toks[self.i] == ":":
            self.i += 1
            superclass, super_index = self._ident("a superclass name")
        self._expect("{")
        features: list[RawProperty | RawMethod] = []
        while True:
            t = toks[self.i]
            if t == "}":
                self.i += 1
                break
            if t == EOF_TOKEN:
                raise self._fail("'}' to end the class")
            try:
                features.append(self._feature())
            except MOFSyntaxError as exc:
                self.handler.error(self.source, exc.index, exc.message)
                self._skip_feature(exc.index)
        self._expect(";")
        self.handler.class_decl(self.source, RawClass(quals, name, index, superclass, super_index, features,
                                                      keyword))

    def _feature(self) -> RawProperty | RawMethod:
        toks = self.toks
        quals = self._qualifier_list() if toks[self.i] == "[" else None
        i = self.i
        type_name = toks[i]
        if not is_identifier(type_name):
            raise self._fail("a data type or a class name followed by REF")
        i += 1
        ref = False
        if toks[i].lower() == "ref":
            ref = True
            i += 1
        name = toks[i]
        if not is_identifier(name):
            raise self._fail("a property or method name", i)
        name_index = i
        i += 1
        if toks[i] == "(":
            self.i = i + 1
            params: list[RawParameter] = []
            if toks[self.i] != ")":
                while True:
                    params.append(self._parameter())
                    t = toks[self.i]
                    if t == ",":
                        self.i += 1
                    elif t == ")":
                        break
                    else:
                        raise self._fail("',' or ')' in the parameter list")
            self.i += 1
            self._expect(";")
            return RawMethod(quals, type_name, name_index - (2 if ref else 1), ref, name, name_index, params)
        self.i = i
        array = self._array_suffix() if toks[i] == "[" else None
        default: Any = NO_VALUE
        default_index = -1
        if toks[self.i] == "=":
            self.i += 1
            default_index = self.i
            default = self._value()
        if toks[self.i] != ";":
            raise self._fail("';' after the property" if default is not NO_VALUE or array is not None
                             else "'(', '[', '=' or ';' after the property name")
        self.i += 1
        return RawProperty(quals, type_name, name_index - (2 if ref else 1), ref, name, name_index, array,
                           default, default_index)

    def _parameter(self) -> RawParameter:
        toks = self.toks
        quals = self._qualifier_list() if toks[self.i] == "[" else None
        type_name, type_index = self._ident("a parameter data type")
        ref = False
        if toks[self.i].lower() == "ref":
            ref = True
            self.i += 1
        name, index = self._ident("a parameter name")
        array = self._array_suffix()
        if toks[self.i] == "=":  # MOF 3 parameter defaults: MI has nowhere to keep them
            self.i += 1
            self._value()
        return RawParameter(quals, type_name, type_index, ref, name, index, array)

    def _instance_production(self, quals: list[RawQualifier] | None) -> None:
        inst = self._instance(nested=False)
        self._expect(";")
        self.handler.instance_decl(self.source, inst)

    def _instance(self, nested: bool) -> RawInstance:
        toks = self.toks
        self.i += 1  # "instance"
        if toks[self.i].lower() != "of":
            raise self._fail("'of' after 'instance'")
        self.i += 1
        class_name, index = self._ident("a class name")
        alias = None
        alias_index = -1
        if toks[self.i].lower() == "as":
            self.i += 1
            t = toks[self.i]
            if t[:1] != "$" or len(t) < 2:
                raise self._fail("an alias ($name)")
            alias, alias_index = t[1:], self.i
            self.i += 1
        self._expect("{")
        props: list[tuple[str, Any, int, int]] = []
        while True:
            t = toks[self.i]
            if t == "}":
                self.i += 1
                break
            if t == EOF_TOKEN:
                raise self._fail("'}' to end the instance")
            try:
                if t == "[":
                    self._qualifier_list()  # MOF 2 let instances carry qualifiers; MI instances have none
                name, name_index = self._ident("a property name")
                self._expect("=")
                value_index = self.i
                value = self._value(allow_instance=True)
                self._expect(";")
                props.append((name, value, name_index, value_index))
            except MOFSyntaxError as exc:
                if nested:
                    raise
                self.handler.error(self.source, exc.index, exc.message)
                self._skip_feature(exc.index)
        return RawInstance(class_name, index, alias, alias_index, props)

    def _qualifier_decl(self) -> None:
        toks = self.toks
        self.i += 1
        name, index = self._ident("a qualifier name")
        self._expect(":")
        type_name, type_index = self._ident("a qualifier type")
        array = self._array_suffix()
        default: Any = NO_VALUE
        default_index = -1
        if toks[self.i] == "=":
            self.i += 1
            default_index = self.i
            default = self._value()
        scopes: list[tuple[str, int]] = []
        flavors: list[tuple[str, int]] = []
        while toks[self.i] == ",":
            self.i += 1
            word, word_index = self._ident("'Scope', 'Flavor' or 'Policy'")
            low = word.lower()
            if low not in ("scope", "flavor", "policy"):
                raise self._fail("'Scope', 'Flavor' or 'Policy'", word_index)
            self._expect("(")
            target = scopes if low == "scope" else flavors
            while True:
                item, item_index = self._ident(f"a {low} name")
                target.append((item, item_index))
                if toks[self.i] == ",":
                    self.i += 1
                    continue
                self._expect(")")
                break
        if toks[self.i] != ";":
            raise self._fail("',' or ';' in the qualifier declaration")
        self.i += 1
        if not scopes:
            raise MOFSyntaxError(index, f"qualifier declaration {name} has no Scope(...)")
        self.handler.qualifier_decl(self.source, RawQualifierDecl(name, index, type_name, type_index, array,
                                                                   default, default_index, scopes, flavors))
