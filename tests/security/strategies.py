"""Hypothesis strategies for what clients send: WS-Man envelopes, MOF, brace instances, object paths, datetimes.

Each strategy mixes the grammar's own tokens with arbitrary text, so most examples get past the first check
and reach the deeper readers, and some are plain garbage. Used by test_fuzz.py (a short run in the suite,
a long one with ``make fuzz``) and seeded into the atheris corpus by tests/fuzz/fuzz_codec.py.
"""

from __future__ import annotations

import uuid

from hypothesis import strategies as st

WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
DMTF = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
T = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
E = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
ACTIONS = [T + "Get", T + "Put", T + "Create", T + "Delete", E + "Enumerate", E + "Pull", E + "Release",
           WMI + "Sample_Watched/Add", "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd/Identify",
           "http://example.org/Nope", ""]
CLASSES = ["Sample_Person", "Sample_Watched", "Sample_Named", "NoSuchClass", "*", "", "Sample_Person/x"]
NAMESPACES = ["root/cimv2", "root/test", "root\\cimv2", "/root//cimv2/", "nope", "", "root/cimv2/" + "x" * 300]

# texts that have broken parsers before: huge numbers, odd digits, controls, XML specials, long runs
NASTY = ["P99999999999Y", "PT99999999999999999999S", "P1" + "0" * 400 + "D", "-PT1S", "PT1e5S", "P", "PT",
         "9" * 400, "-1", "1e400", "NaN", "INF", "0x10", "²", "١٢٣", "\u0000", "\x0b", "&amp;", "&#0;", "&#x1F;",
         "]]>", "<", ">", "'", '"', " x ", "\t", "", "99999999-01-01T00:00:00Z", "2020-01-01T00:00:00+99:99",
         "99999999999999.000000:000", "20201301000000.000000+000", "true", "TRUE", "\ud7ff", "\U0001f600"]

text_values = st.one_of(st.sampled_from(NASTY), st.text(max_size=40),
                        st.integers(min_value=-(2**70), max_value=2**70).map(str))


def _xml_text(s: str) -> str:
    """Escape for XML text; characters XML cannot carry are left in so the parser's refusal is tested too."""
    return s.replace("&", "&amp;").replace("<", "&lt;") if "&#" not in s and "&amp;" not in s else s


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """A WS-Man request envelope: headers and body from the protocol's vocabulary, values from anywhere."""
    action = draw(st.sampled_from(ACTIONS))
    style = draw(st.sampled_from([WMI, DMTF, "http://x/", ""]))
    cls = draw(st.sampled_from(CLASSES))
    headers = [f"<a:Action>{_xml_text(action)}</a:Action>" if draw(st.booleans()) or action else "",
               f"<a:MessageID>uuid:{uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))}</a:MessageID>"
               if draw(st.integers(0, 9)) else "",
               f"<w:ResourceURI>{_xml_text(style + cls)}</w:ResourceURI>" if draw(st.integers(0, 9)) else ""]
    if draw(st.booleans()):
        sels = draw(st.lists(st.tuples(st.sampled_from(["Id", "Name", "__cimnamespace", "", "Id "]),
                                       st.one_of(text_values, st.sampled_from(NAMESPACES))), max_size=3))
        headers.append("<w:SelectorSet>" + "".join(
            f'<w:Selector Name="{_xml_text(n)}">{_xml_text(v)}</w:Selector>' for n, v in sels) + "</w:SelectorSet>")
    if draw(st.booleans()):
        headers.append(f"<w:OperationTimeout>{_xml_text(draw(text_values))}</w:OperationTimeout>")
    if draw(st.booleans()):
        headers.append(f"<w:MaxEnvelopeSize>{_xml_text(draw(text_values))}</w:MaxEnvelopeSize>")
    if draw(st.booleans()):
        opts = draw(st.lists(st.tuples(st.text(max_size=8), st.sampled_from(["xs:int", "xs:boolean", ""]),
                                       text_values), max_size=3))
        headers.append("<w:OptionSet>" + "".join(
            f'<w:Option Name="{_xml_text(n)}" Type="{t}">{_xml_text(v)}</w:Option>' for n, t, v in opts)
            + "</w:OptionSet>")
    if draw(st.integers(0, 5)) == 0:
        headers.append('<x:Unknown xmlns:x="urn:x" s:mustUnderstand="true"/>')
    body = draw(st.sampled_from(["instance", "enumerate", "pull", "identify", "empty", "junk"]))
    if body == "instance":
        props = draw(st.lists(st.tuples(st.sampled_from(["Id", "Name", "Tags", "Born", "Nope", "A", "B"]),
                                        text_values, st.booleans()), max_size=5))
        inner = "".join(f'<p:{n} xsi:nil="true"/>' if nil else f"<p:{n}>{_xml_text(v)}</p:{n}>"
                        for n, v, nil in props)
        name = cls if cls.isidentifier() else "Sample_Person"
        b = f'<p:{name} xmlns:p="{style}{name}">{inner}</p:{name}>'
    elif body == "enumerate":
        parts = draw(st.lists(st.sampled_from([
            "<w:OptimizeEnumeration/>", f"<w:MaxElements>{_xml_text(draw(text_values))}</w:MaxElements>",
            "<w:EnumerationMode>EnumerateEPR</w:EnumerationMode>", "<w:EnumerationMode>Bogus</w:EnumerationMode>",
            '<w:Filter Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"><w:SelectorSet>'
            '<w:Selector Name="Id">1</w:Selector></w:SelectorSet></w:Filter>',
            '<w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">SELECT * FROM Sample_Person</w:Filter>',
            '<w:Filter Dialect="urn:nope">x</w:Filter>']), max_size=3))
        b = "<n:Enumerate>" + "".join(parts) + "</n:Enumerate>"
    elif body == "pull":
        b = (f"<n:Pull><n:EnumerationContext>{_xml_text(draw(text_values))}</n:EnumerationContext>"
             f"<n:MaxTime>{_xml_text(draw(text_values))}</n:MaxTime>"
             f"<n:MaxElements>{_xml_text(draw(text_values))}</n:MaxElements></n:Pull>")
    elif body == "identify":
        b = '<wsmid:Identify xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"/>'
    elif body == "junk":
        b = _xml_text(draw(st.text(max_size=60)))
    else:
        b = ""
    doc = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
           'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
           'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
           'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
           f"<s:Header>{''.join(headers)}</s:Header><s:Body>{b}</s:Body></s:Envelope>")
    data = doc.encode("utf-8", "surrogatepass")
    return draw(mutated(data)) if draw(st.integers(0, 4)) == 0 else data


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, cut or inserted."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            out[i] = draw(st.integers(0, 255))
        elif op == 1:
            del out[i:i + draw(st.integers(1, 16))]
        else:
            out[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(out)


MOF_TOKENS = ["class", "instance", "of", "qualifier", "#pragma", "namespace", "(", ")", "{", "}", "[", "]", ";",
              ":", ",", "=", "Key", "uint32", "string", "datetime", "boolean", "real64", "sint8", "ref", "Foo",
              "Bar", "Sample_Person", "Id", "Name", "Scope", "Flavor", "property", "true", "false", "null", "1",
              "-1", "0x1F", "1.5e10", "99999999999999999999999", '"text"', '"\\x41"', "'c'", "//c\n", "/*c*/",
              "\n", " ", "as", "$alias", "enum", "structure", "association", "indication", "DisableOverride",
              "ToSubclass", "Abstract", "Description", '"19991231235959.000000+000"']

mof_texts = st.one_of(
    st.lists(st.sampled_from(MOF_TOKENS), max_size=40).map(" ".join),
    st.text(max_size=80),
)

BRACE_TOKENS = ["{", "}", "[", "]", "Sample_Person", "Id", "Name", "1", "-1", "x", '"a b"', "'q'", '"', "\\",
                "*Name", "Tags", "true", "99999999999999999999999", "Born", "19991231235959.000000+000", "=", ""]

brace_texts = st.one_of(
    st.lists(st.sampled_from(BRACE_TOKENS), max_size=20).map(" ".join),
    st.text(max_size=60),
)
brace_argvs = st.lists(st.one_of(st.sampled_from(BRACE_TOKENS), st.text(max_size=8)), max_size=16)

PATH_TOKENS = ["\\\\", "//", "server", "host:5985", "root", "cimv2", "/", "\\", ":", ".", "=", ",", '"', "'",
               "Sample_Person", "Id", "Name", "1", "-5", "1.5", "true", "x y", '\\"', "@", "Ref", "{", "}", "¹"]

object_paths = st.one_of(
    st.lists(st.sampled_from(PATH_TOKENS), max_size=20).map("".join),
    st.text(max_size=60),
)

DATETIME_PARTS = ["P", "T", "Y", "M", "D", "H", "S", ".", "-", "+", ":", "Z", "1", "99", "9999", "00", "60",
                  "000", "999999", "99999999999", "2020", "13", "30", "24", " ", "e", "²"]

datetime_texts = st.one_of(
    st.lists(st.sampled_from(DATETIME_PARTS), max_size=16).map("".join),
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.from_regex(r"\d{14}\.\d{6}[+-:]\d{3}", fullmatch=True),
    st.from_regex(r"-?P(\d{1,14}Y)?(\d{1,14}M)?(\d{1,14}D)?(T(\d{1,14}H)?(\d{1,14}M)?(\d{1,14}(\.\d{1,9})?S)?)?",
                  fullmatch=True),
)
