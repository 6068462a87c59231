"""The XML namespaces, Clark names and action URIs of WS-Management, in one place.

Elements are always matched by namespace URI (Clark names ``{uri}local``), never by prefix; the
prefixes here are only the ones we write.
"""

from __future__ import annotations

from typing import Final

SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
WSMV: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
WSMB: Final = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"
WSEN: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
WXF: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
WSE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
WSMID: Final = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
CIM: Final = "http://schemas.dmtf.org/wbem/wscim/1/common"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XS: Final = "http://www.w3.org/2001/XMLSchema"
WSMANFAULT: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
XML: Final = "http://www.w3.org/XML/1998/namespace"

# What our envelopes declare on the root, so nested elements need no declarations of their own.
NSMAP: Final[dict[str, str]] = {
    "s": SOAP, "a": WSA, "w": WSMAN, "n": WSEN, "x": WXF, "b": WSMB, "wsmv": WSMV,
    "xsi": XSI, "cim": CIM,
}

ANONYMOUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"


def q(ns: str, local: str) -> str:
    """The Clark name ``{ns}local``."""
    return f"{{{ns}}}{local}"


# --- Clark names used on hot paths ---------------------------------------------------------------
S_ENVELOPE: Final = q(SOAP, "Envelope")
S_HEADER: Final = q(SOAP, "Header")
S_BODY: Final = q(SOAP, "Body")
S_FAULT: Final = q(SOAP, "Fault")
S_MUST_UNDERSTAND: Final = q(SOAP, "mustUnderstand")
A_TO: Final = q(WSA, "To")
A_ACTION: Final = q(WSA, "Action")
A_MESSAGE_ID: Final = q(WSA, "MessageID")
A_RELATES_TO: Final = q(WSA, "RelatesTo")
A_REPLY_TO: Final = q(WSA, "ReplyTo")
A_FAULT_TO: Final = q(WSA, "FaultTo")
A_ADDRESS: Final = q(WSA, "Address")
A_REFERENCE_PARAMETERS: Final = q(WSA, "ReferenceParameters")
A_REFERENCE_PROPERTIES: Final = q(WSA, "ReferenceProperties")
A_EPR: Final = q(WSA, "EndpointReference")
W_RESOURCE_URI: Final = q(WSMAN, "ResourceURI")
W_SELECTOR_SET: Final = q(WSMAN, "SelectorSet")
W_SELECTOR: Final = q(WSMAN, "Selector")
W_OPTION_SET: Final = q(WSMAN, "OptionSet")
W_OPTION: Final = q(WSMAN, "Option")
W_MAX_ENVELOPE_SIZE: Final = q(WSMAN, "MaxEnvelopeSize")
W_OPERATION_TIMEOUT: Final = q(WSMAN, "OperationTimeout")
W_LOCALE: Final = q(WSMAN, "Locale")
W_FRAGMENT_TRANSFER: Final = q(WSMAN, "FragmentTransfer")
W_ITEMS: Final = q(WSMAN, "Items")
W_ITEM: Final = q(WSMAN, "Item")
W_XML_FRAGMENT: Final = q(WSMAN, "XmlFragment")
W_END_OF_SEQUENCE: Final = q(WSMAN, "EndOfSequence")
W_OPTIMIZE_ENUMERATION: Final = q(WSMAN, "OptimizeEnumeration")
W_MAX_ELEMENTS: Final = q(WSMAN, "MaxElements")
W_ENUMERATION_MODE: Final = q(WSMAN, "EnumerationMode")
W_FILTER: Final = q(WSMAN, "Filter")
W_FAULT_DETAIL: Final = q(WSMAN, "FaultDetail")
P_DATA_LOCALE: Final = q(WSMV, "DataLocale")
P_SESSION_ID: Final = q(WSMV, "SessionId")
P_OPERATION_ID: Final = q(WSMV, "OperationID")
P_SEQUENCE_ID: Final = q(WSMV, "SequenceId")
N_ENUMERATE: Final = q(WSEN, "Enumerate")
N_ENUMERATE_RESPONSE: Final = q(WSEN, "EnumerateResponse")
N_PULL: Final = q(WSEN, "Pull")
N_PULL_RESPONSE: Final = q(WSEN, "PullResponse")
N_RELEASE: Final = q(WSEN, "Release")
N_ENUMERATION_CONTEXT: Final = q(WSEN, "EnumerationContext")
N_ITEMS: Final = q(WSEN, "Items")
N_END_OF_SEQUENCE: Final = q(WSEN, "EndOfSequence")
N_MAX_ELEMENTS: Final = q(WSEN, "MaxElements")
N_MAX_TIME: Final = q(WSEN, "MaxTime")
N_MAX_CHARACTERS: Final = q(WSEN, "MaxCharacters")
N_EXPIRES: Final = q(WSEN, "Expires")
N_FILTER: Final = q(WSEN, "Filter")
X_RESOURCE_CREATED: Final = q(WXF, "ResourceCreated")
B_POLYMORPHISM_MODE: Final = q(WSMB, "PolymorphismMode")
B_IS_CIM_ERROR: Final = q(WSMB, "IsCIM_Error")
XSI_NIL: Final = q(XSI, "nil")
XSI_TYPE: Final = q(XSI, "type")
XML_LANG: Final = q(XML, "lang")
ID_IDENTIFY: Final = q(WSMID, "Identify")
ID_IDENTIFY_RESPONSE: Final = q(WSMID, "IdentifyResponse")
F_WSMAN_FAULT: Final = q(WSMANFAULT, "WSManFault")
F_MESSAGE: Final = q(WSMANFAULT, "Message")


# --- actions ----------------------------------------------------------------------------------------
_XFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_ENUM = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"

ACTION_GET: Final = _XFER + "Get"
ACTION_PUT: Final = _XFER + "Put"
ACTION_CREATE: Final = _XFER + "Create"
ACTION_DELETE: Final = _XFER + "Delete"
ACTION_ENUMERATE: Final = _ENUM + "Enumerate"
ACTION_PULL: Final = _ENUM + "Pull"
ACTION_RELEASE: Final = _ENUM + "Release"
ACTION_IDENTIFY: Final = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity/Identify"
ACTION_SUBSCRIBE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe"

RESPONSE_ACTIONS: Final = {
    a: a + "Response"
    for a in (ACTION_GET, ACTION_PUT, ACTION_CREATE, ACTION_DELETE, ACTION_ENUMERATE, ACTION_PULL, ACTION_RELEASE)
}

FAULT_ACTION_WSMAN: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
FAULT_ACTION_WSA: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
FAULT_ACTION_WSEN: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault"
FAULT_ACTION_WXF: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/fault"
FAULT_ACTION_WSE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/fault"

FAULT_DETAIL: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"

# --- enumeration modes and filter dialects ---------------------------------------------------------
DIALECT_WQL: Final = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
DIALECT_CQL: Final = "http://schemas.dmtf.org/wbem/cql/1/dsp0202.pdf"
DIALECT_SELECTOR: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"
DIALECT_ASSOCIATION: Final = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding/associationFilter"

SECPROFILE_HTTP_BASIC: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/basic"
SECPROFILE_HTTP_SPNEGO: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"
