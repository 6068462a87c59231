"""The error-details instance: a CIM_Error subclass carrying the MI result (what OMI_Error and
MSFT_WmiError are to OMI and Windows)."""

from __future__ import annotations

from .classes import Class, Property
from .instance import Instance
from .types import RESULT_CATEGORIES, MIResult, MIType

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
    inst = Instance.from_elements("OpenMI_Error", {}, namespace="root/interop")
    add = inst.add_element
    add("OwningEntity", OWNING_ENTITY, MIType.STRING)
    add("MessageID", message_id(result), MIType.STRING)
    add("Message", message, MIType.STRING)
    add("MessageArguments", [], MIType.STRINGA)
    add("PerceivedSeverity", _SEVERITY.get(r, 3) if r is not None else 3, MIType.UINT16)
    add("ProbableCause", 0, MIType.UINT16)
    add("ErrorType", 0, MIType.UINT16)
    add("ErrorSource", source, MIType.STRING)
    add("CIMStatusCode", int(result), MIType.UINT32)
    add("CIMStatusCodeDescription", r.description if r is not None else None, MIType.STRING)
    add("error_Code", int(result), MIType.UINT32)
    add("error_Type", "MI", MIType.STRING)
    add("error_Category", int(RESULT_CATEGORIES[r]) if r is not None else 0, MIType.UINT16)
    return inst
