"""The error-details instance: a CIM_Error subclass carrying the MI result (what OMI_Error and
MSFT_WmiError are to OMI and Windows)."""

from __future__ import annotations

from typing import Any

from .classes import Class, Property
from .instance import Element, Instance
from .types import RESULT_CATEGORIES, MIResult, MIType
from .values import coerce

CIM_ERROR = Class("CIM_Error", properties=[
    Property("ErrorType", MIType.UINT16),
    Property("OtherErrorType", MIType.STRING),
    Property("OwningEntity", MIType.STRING),
    Property("MessageID", MIType.STRING),
    Property("Message", MIType.STRING),
    Property("MessageArguments", MIType.STRINGA),
    Property("PerceivedSeverity", MIType.UINT16),
    Property("ProbableCause", MIType.UINT16),
    Property("ProbableCauseDescription", MIType.STRING),
    Property("RecommendedActions", MIType.STRINGA),
    Property("ErrorSource", MIType.STRING),
    Property("ErrorSourceFormat", MIType.UINT16),
    Property("OtherErrorSourceFormat", MIType.STRING),
    Property("CIMStatusCode", MIType.UINT32),
    Property("CIMStatusCodeDescription", MIType.STRING),
], qualifiers={"Indication": True, "Exception": True})

OPENMI_ERROR = Class("OpenMI_Error", "CIM_Error", properties=[
    Property("error_Code", MIType.UINT32),
    Property("error_Type", MIType.STRING),
    Property("error_Category", MIType.UINT16),
])

OWNING_ENTITY = "openmi"

# CIM_Error.PerceivedSeverity: 2 = Low, 3 = Medium, 4 = High, 5 = Fatal.
_SEVERITY = {MIResult.FAILED: 4, MIResult.SERVER_IS_SHUTTING_DOWN: 5, MIResult.SERVER_LIMITS_EXCEEDED: 4}


def message_id(result: int) -> str:
    return f"OPENMI{int(result):04d}"


def error_instance(result: int, message: str, *, source: str | None = None) -> Instance:
    """A CIM_Error-shaped instance describing ``result`` (class OpenMI_Error)."""
    try:
        r: MIResult | None = MIResult(result)
    except ValueError:
        r = None
    # Elements made directly (their values already have their types): every failing request builds one,
    # and add_element's checks and coercions were most of a NOT_FOUND answer's cost.
    if type(message) is not str:
        message = coerce(message, MIType.STRING, "Message")
    if source is not None and type(source) is not str:
        source = coerce(source, MIType.STRING, "ErrorSource")
    code = int(result)
    values: tuple[tuple[str, Any, MIType], ...] = (
        ("OwningEntity", OWNING_ENTITY, MIType.STRING),
        ("MessageID", message_id(result), MIType.STRING),
        ("Message", message, MIType.STRING),
        ("MessageArguments", [], MIType.STRINGA),
        ("PerceivedSeverity", _SEVERITY.get(r, 3) if r is not None else 3, MIType.UINT16),
        ("ProbableCause", 0, MIType.UINT16),
        ("ErrorType", 0, MIType.UINT16),
        ("ErrorSource", source, MIType.STRING),
        ("CIMStatusCode", code, MIType.UINT32),
        ("CIMStatusCodeDescription", r.description if r is not None else None, MIType.STRING),
        ("error_Code", code, MIType.UINT32),
        ("error_Type", "MI", MIType.STRING),
        ("error_Category", int(RESULT_CATEGORIES[r]) if r is not None else 0, MIType.UINT16),
    )
    return Instance.from_elements("OpenMI_Error", {name.lower(): Element(name, value, t) for name, value, t in values},
                                  namespace="root/interop")
