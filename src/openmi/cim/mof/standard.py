"""The standard qualifier declarations of DSP0004 that every namespace starts with, as WMI's namespaces do.

They are the declarations of the DMTF CIM Schema 2.49 (its ``qualifiers.mof`` and
``qualifiers_optional.mof``), plus the optional qualifiers of DSP0004 2.x that the schema no longer
declares (Indexed, NonLocal, NonLocalType, Source, SourceType). With them, MOF written as WMI's mofcomp
accepts it (``class A { [Key] uint32 Id; };``) loads without declaring anything; MOF that declares them
itself (the CIM Schema does) loads unchanged as long as its declarations agree (see :func:`differences`).
"""

from __future__ import annotations

import copy
from functools import cache

from ..classes import QualifierDecl
from ..types import MIFlag

STANDARD_QUALIFIERS_MOF = """
Qualifier Association : boolean = false, Scope(association), Flavor(DisableOverride, ToSubclass);
Qualifier Indication : boolean = false, Scope(class, indication), Flavor(DisableOverride, ToSubclass);
Qualifier Abstract : boolean = false, Scope(class, association, indication), Flavor(EnableOverride, Restricted);
Qualifier Aggregate : boolean = false, Scope(reference), Flavor(DisableOverride, ToSubclass);
Qualifier Aggregation : boolean = false, Scope(association), Flavor(DisableOverride, ToSubclass);
Qualifier ArrayType : string = "Bag", Scope(property, parameter), Flavor(DisableOverride, ToSubclass);
Qualifier BitMap : string[], Scope(property, method, parameter);
Qualifier BitValues : string[], Scope(property, method, parameter), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier ClassConstraint : string[], Scope(class, association, indication);
Qualifier Composition : boolean = false, Scope(association), Flavor(DisableOverride, ToSubclass);
Qualifier Correlatable : string[], Scope(property);
Qualifier Counter : boolean = false, Scope(property, method, parameter);
Qualifier Deprecated : string[], Scope(any), Flavor(EnableOverride, Restricted);
Qualifier Description : string = null, Scope(any), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier DisplayName : string = null, Scope(any), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier DN : boolean = false, Scope(property, method, parameter), Flavor(DisableOverride, ToSubclass);
Qualifier EmbeddedInstance : string = null, Scope(property, method, parameter);
Qualifier EmbeddedObject : boolean = false, Scope(property, method, parameter), Flavor(DisableOverride, ToSubclass);
Qualifier Exception : boolean = false, Scope(class, indication), Flavor(DisableOverride, ToSubclass);
Qualifier Experimental : boolean = false, Scope(any), Flavor(EnableOverride, Restricted);
Qualifier Gauge : boolean = false, Scope(property, method, parameter);
Qualifier In : boolean = true, Scope(parameter), Flavor(DisableOverride, ToSubclass);
Qualifier IsPUnit : boolean = false, Scope(property, method, parameter);
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
Qualifier MappingStrings : string[], Scope(any);
Qualifier Max : uint32 = null, Scope(reference);
Qualifier MaxLen : uint32 = null, Scope(property, method, parameter);
Qualifier MaxValue : sint64 = null, Scope(property, method, parameter);
Qualifier MethodConstraint : string[], Scope(method);
Qualifier Min : uint32 = 0, Scope(reference);
Qualifier MinLen : uint32 = 0, Scope(property, method, parameter);
Qualifier MinValue : sint64 = null, Scope(property, method, parameter);
Qualifier ModelCorrespondence : string[], Scope(any);
Qualifier NullValue : string = null, Scope(property), Flavor(DisableOverride, ToSubclass);
Qualifier Octetstring : boolean = false, Scope(property, method, parameter), Flavor(DisableOverride, ToSubclass);
Qualifier Out : boolean = false, Scope(parameter), Flavor(DisableOverride, ToSubclass);
Qualifier Override : string = null, Scope(property, reference, method), Flavor(EnableOverride, Restricted);
Qualifier Propagated : string = null, Scope(property), Flavor(DisableOverride, ToSubclass);
Qualifier PropertyConstraint : string[], Scope(property, reference);
Qualifier PUnit : string = null, Scope(property, method, parameter);
Qualifier Read : boolean = true, Scope(property);
Qualifier Reference : string = null, Scope(property);
Qualifier Required : boolean = false, Scope(property, reference, method, parameter),
    Flavor(DisableOverride, ToSubclass);
Qualifier Revision : string = null, Scope(class, association, indication),
    Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier Schema : string = null, Scope(property, method), Flavor(DisableOverride, ToSubclass, Translatable);
Qualifier Static : boolean = false, Scope(property, method), Flavor(DisableOverride, ToSubclass);
Qualifier Structure : boolean = false, Scope(class, indication), Flavor(DisableOverride, ToSubclass);
Qualifier Terminal : boolean = false, Scope(class, association, indication);
Qualifier UMLPackagePath : string = null, Scope(class, association, indication);
Qualifier Units : string = null, Scope(property, method, parameter), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier ValueMap : string[], Scope(property, method, parameter);
Qualifier Values : string[], Scope(property, method, parameter), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier Version : string = null, Scope(class, association, indication),
    Flavor(EnableOverride, Restricted, Translatable);
Qualifier Weak : boolean = false, Scope(reference), Flavor(DisableOverride, ToSubclass);
Qualifier Write : boolean = false, Scope(property);
Qualifier XMLNamespaceName : string = null, Scope(property, method, parameter);

// Optional qualifiers (CIM Schema 2.49 qualifiers_optional.mof)
Qualifier Alias : string = null, Scope(property, reference, method), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier Delete : boolean = false, Scope(association, reference);
Qualifier DisplayDescription : string = null, Scope(any), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier Expensive : boolean = false, Scope(any);
Qualifier Ifdeleted : boolean = false, Scope(association, reference);
Qualifier Invisible : boolean = false, Scope(class, association, property, reference, method);
Qualifier Large : boolean = false, Scope(class, property);
Qualifier PropertyUsage : string = "CurrentContext", Scope(property);
Qualifier Provider : string = null, Scope(any);
Qualifier SyntaxType : string = null, Scope(property, reference, method, parameter);
Qualifier Syntax : string = null, Scope(property, reference, method, parameter);
Qualifier TriggerType : string = null, Scope(class, association, indication, property, reference, method);
Qualifier UnknownValues : string[], Scope(property), Flavor(DisableOverride, ToSubclass);
Qualifier UnsupportedValues : string[], Scope(property), Flavor(DisableOverride, ToSubclass);

// Optional qualifiers of DSP0004 2.x that the CIM Schema 2.49 no longer declares
Qualifier Indexed : boolean = false, Scope(property), Flavor(DisableOverride, ToSubclass);
Qualifier NonLocal : string = null, Scope(reference);
Qualifier NonLocalType : string = null, Scope(reference);
Qualifier Source : string = null, Scope(class, association, indication);
Qualifier SourceType : string = null, Scope(class, association, indication, reference);
"""


@cache
def _compiled() -> dict[str, QualifierDecl]:
    from .compiler import compile_mof

    result = compile_mof(STANDARD_QUALIFIERS_MOF, qualifier_lookup=lambda ns, name: None)
    return {q.name.lower(): q for _, q in result.qualifier_decls}


def standard_qualifiers() -> list[QualifierDecl]:
    """Fresh copies of the standard declarations (callers may keep and change them)."""
    return [copy.deepcopy(q) for q in _compiled().values()]


def standard_qualifier(name: str) -> QualifierDecl | None:
    """The standard declaration of ``name`` (any case), shared: read it, never change it."""
    return _compiled().get(name.lower())


def is_standard(name: str) -> bool:
    return name.lower() in _compiled()


_OVERRIDE_BITS = int(MIFlag.ENABLEOVERRIDE | MIFlag.DISABLEOVERRIDE)
_PROPAGATION_BITS = int(MIFlag.TOSUBCLASS | MIFlag.RESTRICTED)


def _type_word(decl: QualifierDecl) -> str:
    return decl.type.cim_name + ("[]" if decl.type.is_array else "")


def _scope_word(scope: int) -> str:
    if scope & int(MIFlag.ANY) == int(MIFlag.ANY):
        return "any"
    names = [("class", MIFlag.CLASS), ("association", MIFlag.ASSOCIATION), ("indication", MIFlag.INDICATION),
             ("property", MIFlag.PROPERTY), ("reference", MIFlag.REFERENCE), ("method", MIFlag.METHOD),
             ("parameter", MIFlag.PARAMETER)]
    return ", ".join(n for n, bit in names if scope & bit) or "nothing"


def _flavor_word(flavor: int) -> str:
    names = [("EnableOverride", MIFlag.ENABLEOVERRIDE), ("DisableOverride", MIFlag.DISABLEOVERRIDE),
             ("ToSubclass", MIFlag.TOSUBCLASS), ("Restricted", MIFlag.RESTRICTED)]
    return ", ".join(n for n, bit in names if flavor & bit)


def conflicts(held: QualifierDecl, new: QualifierDecl) -> list[str]:
    """How a new declaration ``new`` contradicts the declaration ``held`` a namespace already has (empty
    when it agrees), each item as ``<what> here, not <what> there``.

    It agrees when every use of the qualifier it allows means the same under ``held``: the same type
    and array size, the same default, the same override and propagation flavors, and a scope no wider
    than held's (``Scope(method)`` for Static, which the standard allows on properties and methods too).
    Translatable and ToInstance change nothing a class says and are not compared.
    """
    out: list[str] = []
    if held.type != new.type:
        out.append(f"type {_type_word(new)}, not {_type_word(held)}")
    elif (held.array_size or None) != (new.array_size or None):
        out.append(f"array size {new.array_size or 'unbounded'}, not {held.array_size or 'unbounded'}")
    elif held.default != new.default:
        out.append(f"default {_value_word(new.default)}, not {_value_word(held.default)}")
    wider = int(new.scope) & ~int(held.scope) & int(MIFlag.ANY)
    if wider:
        out.append(f"Scope({_scope_word(int(new.scope))}) includes {_scope_word(wider)}, outside "
                   f"Scope({_scope_word(int(held.scope))})")
    bits = _OVERRIDE_BITS | _PROPAGATION_BITS
    if int(held.flavor) & bits != int(new.flavor) & bits:
        mine, theirs = _flavor_word(int(new.flavor) & bits), _flavor_word(int(held.flavor) & bits)
        out.append(f"Flavor({mine}), not Flavor({theirs})")
    return out


def _value_word(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "{" + ", ".join(_value_word(x) for x in v) + "}"
    return str(v)
