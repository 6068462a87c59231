"""The floor of openmi: MI types, values, instances, classes and errors. Depends on nothing else."""

from .classes import Class, Method, Parameter, Property, Qualifier, QualifierDecl, resolve_class
from .errors import MIError, MOFError
from .instance import Element, Instance
from .objectpath import Reference, format_object_path, parse_object_path
from .types import (
    CancellationReason,
    MIErrorCategory,
    MIFlag,
    MIResult,
    MIType,
    OperationFlags,
    PromptType,
    ResponseType,
    WriteMessageChannel,
)

__all__ = [
    "CancellationReason", "Class", "Element", "Instance", "MIError", "MIErrorCategory", "MIFlag",
    "MIResult", "MIType", "MOFError", "Method", "OperationFlags", "Parameter", "PromptType", "Property",
    "Qualifier", "QualifierDecl", "Reference", "ResponseType", "WriteMessageChannel", "format_object_path",
    "parse_object_path", "resolve_class",
]
