"""openmi: the Windows Management Infrastructure (MI) API and a CIM server, in pure Python."""

from .cim import (
    CancellationReason,
    Class,
    Element,
    Instance,
    MIError,
    MIErrorCategory,
    MIFlag,
    MIResult,
    MIType,
    MOFError,
    Method,
    OperationFlags,
    Parameter,
    PromptType,
    Property,
    Qualifier,
    QualifierDecl,
    ResponseType,
    WriteMessageChannel,
)

from .client import (
    Application,
    AuthType,
    ClassResult,
    DestinationOptions,
    InstanceResult,
    Operation,
    OperationCallbacks,
    OperationOptions,
    Session,
)
from .engine import Context, Server

__version__ = "0.1.0"

__all__ = [
    "Application", "AuthType", "ClassResult", "Context", "DestinationOptions", "InstanceResult", "Operation",
    "OperationCallbacks", "OperationOptions", "Server", "Session",
    "CancellationReason", "Class", "Element", "Instance", "MIError", "MIErrorCategory", "MIFlag",
    "MIResult", "MIType", "MOFError", "Method", "OperationFlags", "Parameter", "PromptType", "Property",
    "Qualifier", "QualifierDecl", "ResponseType", "WriteMessageChannel", "__version__",
]
