"""The enumerations of mi.h: result codes, value types, element flags, cancellation reasons.

Every number here is the one mi.h defines, so values cross the wire and the C API unchanged.
"""

from __future__ import annotations

import enum


class MIResult(enum.IntEnum):
    """MI_Result: the final status of an operation (18 and 19 are unused in mi.h)."""

    OK = 0
    FAILED = 1
    ACCESS_DENIED = 2
    INVALID_NAMESPACE = 3
    INVALID_PARAMETER = 4
    INVALID_CLASS = 5
    NOT_FOUND = 6
    NOT_SUPPORTED = 7
    CLASS_HAS_CHILDREN = 8
    CLASS_HAS_INSTANCES = 9
    INVALID_SUPERCLASS = 10
    ALREADY_EXISTS = 11
    NO_SUCH_PROPERTY = 12
    TYPE_MISMATCH = 13
    QUERY_LANGUAGE_NOT_SUPPORTED = 14
    INVALID_QUERY = 15
    METHOD_NOT_AVAILABLE = 16
    METHOD_NOT_FOUND = 17
    NAMESPACE_NOT_EMPTY = 20
    INVALID_ENUMERATION_CONTEXT = 21
    INVALID_OPERATION_TIMEOUT = 22
    PULL_HAS_BEEN_ABANDONED = 23
    PULL_CANNOT_BE_ABANDONED = 24
    FILTERED_ENUMERATION_NOT_SUPPORTED = 25
    CONTINUATION_ON_ERROR_NOT_SUPPORTED = 26
    SERVER_LIMITS_EXCEEDED = 27
    SERVER_IS_SHUTTING_DOWN = 28

    @property
    def mi_name(self) -> str:
        """The mi.h spelling, e.g. ``MI_RESULT_NOT_FOUND``."""
        return "MI_RESULT_" + self.name

    @property
    def description(self) -> str:
        return RESULT_DESCRIPTIONS[self]


RESULT_DESCRIPTIONS: dict[MIResult, str] = {
    MIResult.OK: "The operation succeeded.",
    MIResult.FAILED: "The operation failed.",
    MIResult.ACCESS_DENIED: "Access was denied.",
    MIResult.INVALID_NAMESPACE: "The specified namespace does not exist.",
    MIResult.INVALID_PARAMETER: "One or more parameter values passed to the method were invalid.",
    MIResult.INVALID_CLASS: "The specified class does not exist.",
    MIResult.NOT_FOUND: "The requested object could not be found.",
    MIResult.NOT_SUPPORTED: "The requested operation is not supported.",
    MIResult.CLASS_HAS_CHILDREN: "The operation cannot be carried out on this class since it has subclasses.",
    MIResult.CLASS_HAS_INSTANCES: "The operation cannot be carried out on this class since it has instances.",
    MIResult.INVALID_SUPERCLASS: "The operation cannot be carried out since the specified superclass does not exist.",
    MIResult.ALREADY_EXISTS: "The operation cannot be carried out because an object already exists.",
    MIResult.NO_SUCH_PROPERTY: "The specified property does not exist.",
    MIResult.TYPE_MISMATCH: "The value supplied is not compatible with the type.",
    MIResult.QUERY_LANGUAGE_NOT_SUPPORTED: "The query language is not recognized or supported.",
    MIResult.INVALID_QUERY: "The query is not valid for the specified query language.",
    MIResult.METHOD_NOT_AVAILABLE: "The extrinsic method cannot be invoked.",
    MIResult.METHOD_NOT_FOUND: "The specified extrinsic method does not exist.",
    MIResult.NAMESPACE_NOT_EMPTY: "The specified namespace is not empty.",
    MIResult.INVALID_ENUMERATION_CONTEXT: "The enumeration context specified is not valid.",
    MIResult.INVALID_OPERATION_TIMEOUT: "The specified operation timeout is not supported by the server.",
    MIResult.PULL_HAS_BEEN_ABANDONED: "The pull operation has been abandoned.",
    MIResult.PULL_CANNOT_BE_ABANDONED: "The attempt to abandon a concurrent pull request failed.",
    MIResult.FILTERED_ENUMERATION_NOT_SUPPORTED: "Using a filter in the enumeration is not supported.",
    MIResult.CONTINUATION_ON_ERROR_NOT_SUPPORTED: "Continuation on error is not supported.",
    MIResult.SERVER_LIMITS_EXCEEDED: "The server limits were exceeded.",
    MIResult.SERVER_IS_SHUTTING_DOWN: "The server is in the process of shutting down.",
}


class MIErrorCategory(enum.IntEnum):
    """MI_ErrorCategory (CLOS_EERROR keeps mi.h's own spelling)."""

    NOT_SPECIFIED = 0
    OPEN_ERROR = 1
    CLOS_EERROR = 2
    DEVICE_ERROR = 3
    DEADLOCK_DETECTED = 4
    INVALID_ARGUMENT = 5
    INVALID_DATA = 6
    INVALID_OPERATION = 7
    INVALID_RESULT = 8
    INVALID_TYPE = 9
    METADATA_ERROR = 10
    NOT_IMPLEMENTED = 11
    NOT_INSTALLED = 12
    OBJECT_NOT_FOUND = 13
    OPERATION_STOPPED = 14
    OPERATION_TIMEOUT = 15
    SYNTAX_ERROR = 16
    PARSER_ERROR = 17
    ACCESS_DENIED = 18
    RESOURCE_BUSY = 19
    RESOURCE_EXISTS = 20
    RESOURCE_UNAVAILABLE = 21
    READ_ERROR = 22
    WRITE_ERROR = 23
    FROM_STDERR = 24
    SECURITY_ERROR = 25
    PROTOCOL_ERROR = 26
    CONNECTION_ERROR = 27
    AUTHENTICATION_ERROR = 28
    LIMITS_EXCEEDED = 29
    QUOTA_EXCEEDED = 30
    NOT_ENABLED = 31


_C = MIErrorCategory
RESULT_CATEGORIES: dict[MIResult, MIErrorCategory] = {
    MIResult.OK: _C.NOT_SPECIFIED,
    MIResult.FAILED: _C.NOT_SPECIFIED,
    MIResult.ACCESS_DENIED: _C.ACCESS_DENIED,
    MIResult.INVALID_NAMESPACE: _C.METADATA_ERROR,
    MIResult.INVALID_PARAMETER: _C.INVALID_ARGUMENT,
    MIResult.INVALID_CLASS: _C.METADATA_ERROR,
    MIResult.NOT_FOUND: _C.OBJECT_NOT_FOUND,
    MIResult.NOT_SUPPORTED: _C.NOT_IMPLEMENTED,
    MIResult.CLASS_HAS_CHILDREN: _C.METADATA_ERROR,
    MIResult.CLASS_HAS_INSTANCES: _C.METADATA_ERROR,
    MIResult.INVALID_SUPERCLASS: _C.METADATA_ERROR,
    MIResult.ALREADY_EXISTS: _C.RESOURCE_EXISTS,
    MIResult.NO_SUCH_PROPERTY: _C.METADATA_ERROR,
    MIResult.TYPE_MISMATCH: _C.INVALID_TYPE,
    MIResult.QUERY_LANGUAGE_NOT_SUPPORTED: _C.NOT_IMPLEMENTED,
    MIResult.INVALID_QUERY: _C.INVALID_ARGUMENT,
    MIResult.METHOD_NOT_AVAILABLE: _C.METADATA_ERROR,
    MIResult.METHOD_NOT_FOUND: _C.METADATA_ERROR,
    MIResult.NAMESPACE_NOT_EMPTY: _C.METADATA_ERROR,
    MIResult.INVALID_ENUMERATION_CONTEXT: _C.METADATA_ERROR,
    MIResult.INVALID_OPERATION_TIMEOUT: _C.INVALID_ARGUMENT,
    MIResult.PULL_HAS_BEEN_ABANDONED: _C.OPERATION_STOPPED,
    MIResult.PULL_CANNOT_BE_ABANDONED: _C.CLOS_EERROR,
    MIResult.FILTERED_ENUMERATION_NOT_SUPPORTED: _C.NOT_IMPLEMENTED,
    MIResult.CONTINUATION_ON_ERROR_NOT_SUPPORTED: _C.NOT_IMPLEMENTED,
    MIResult.SERVER_LIMITS_EXCEEDED: _C.RESOURCE_BUSY,
    MIResult.SERVER_IS_SHUTTING_DOWN: _C.RESOURCE_UNAVAILABLE,
}
del _C


class MIType(enum.IntEnum):
    """MI_Type: 16 scalar tags; an array type is its scalar tag with the 0x10 bit set."""

    BOOLEAN = 0
    UINT8 = 1
    SINT8 = 2
    UINT16 = 3
    SINT16 = 4
    UINT32 = 5
    SINT32 = 6
    UINT64 = 7
    SINT64 = 8
    REAL32 = 9
    REAL64 = 10
    CHAR16 = 11
    DATETIME = 12
    STRING = 13
    REFERENCE = 14
    INSTANCE = 15
    BOOLEANA = 16
    UINT8A = 17
    SINT8A = 18
    UINT16A = 19
    SINT16A = 20
    UINT32A = 21
    SINT32A = 22
    UINT64A = 23
    SINT64A = 24
    REAL32A = 25
    REAL64A = 26
    CHAR16A = 27
    DATETIMEA = 28
    STRINGA = 29
    REFERENCEA = 30
    INSTANCEA = 31

    @property
    def is_array(self) -> bool:
        return bool(self & 0x10)

    @property
    def scalar(self) -> MIType:
        return MIType(self & 0x0F)

    @property
    def array(self) -> MIType:
        return MIType(self | 0x10)

    @property
    def is_integer(self) -> bool:
        return MIType.UINT8 <= (self & 0x0F) <= MIType.SINT64

    @property
    def cim_name(self) -> str:
        """The MOF/CIM-XML spelling of the scalar type (``uint32``, ``datetime``, ``ref`` …)."""
        return _CIM_NAMES[self & 0x0F]

    @classmethod
    def from_cim_name(cls, name: str, array: bool = False) -> MIType:
        t = _CIM_TYPES.get(name.lower())
        if t is None:
            raise ValueError(f"unknown CIM type {name!r}")
        return t.array if array else t


_CIM_NAMES = (
    "boolean", "uint8", "sint8", "uint16", "sint16", "uint32", "sint32", "uint64",
    "sint64", "real32", "real64", "char16", "datetime", "string", "ref", "instance",
)
_CIM_TYPES = {name: MIType(i) for i, name in enumerate(_CIM_NAMES)}
_CIM_TYPES["reference"] = MIType.REFERENCE
_CIM_TYPES["object"] = MIType.INSTANCE

MI_ARRAY = 0x10

INTEGER_RANGES: dict[MIType, tuple[int, int]] = {
    MIType.UINT8: (0, 2**8 - 1),
    MIType.SINT8: (-(2**7), 2**7 - 1),
    MIType.UINT16: (0, 2**16 - 1),
    MIType.SINT16: (-(2**15), 2**15 - 1),
    MIType.UINT32: (0, 2**32 - 1),
    MIType.SINT32: (-(2**31), 2**31 - 1),
    MIType.UINT64: (0, 2**64 - 1),
    MIType.SINT64: (-(2**63), 2**63 - 1),
}


class MIFlag(enum.IntFlag):
    """MI_FLAG_*: qualifier scopes and flavors, element flags."""

    NONE = 0
    CLASS = 1 << 0
    METHOD = 1 << 1
    PROPERTY = 1 << 2
    PARAMETER = 1 << 3
    ASSOCIATION = 1 << 4
    INDICATION = 1 << 5
    REFERENCE = 1 << 6
    ANY = 0x7F
    ENABLEOVERRIDE = 1 << 7
    DISABLEOVERRIDE = 1 << 8
    RESTRICTED = 1 << 9
    TOSUBCLASS = 1 << 10
    TRANSLATABLE = 1 << 11
    KEY = 1 << 12
    IN = 1 << 13
    OUT = 1 << 14
    REQUIRED = 1 << 15
    STATIC = 1 << 16
    ABSTRACT = 1 << 17
    TERMINAL = 1 << 18
    EXPENSIVE = 1 << 19
    STREAM = 1 << 20
    READONLY = 1 << 21
    TOINSTANCE = 1 << 22
    NOT_MODIFIED = 1 << 25
    NULL = 1 << 29
    BORROW = 1 << 30
    ADOPT = 1 << 31


class OperationFlags(enum.IntFlag):
    """MI_OPERATIONFLAGS_* (one value per group may be combined)."""

    DEFAULT = 0
    MANUAL_ACK_RESULTS = 0x0001
    BASIC_RTTI = 0x0002
    FULL_RTTI = 0x0004
    LOCALIZED_QUALIFIERS = 0x0008
    EXPENSIVE_PROPERTIES = 0x0040
    POLYMORPHISM_SHALLOW = 0x0080
    POLYMORPHISM_DEEP_BASE_PROPS_ONLY = 0x0180
    REPORT_OPERATION_STARTED = 0x0200
    NO_RTTI = 0x0400
    STANDARD_RTTI = 0x0800


class CancellationReason(enum.IntEnum):
    """MI_CancellationReason."""

    NONE = 0
    TIMEOUT = 1
    SHUTDOWN = 2
    SERVICESTOP = 3


class ResponseType(enum.IntEnum):
    """MI_OperationCallback_ResponseType: the answer to a prompt or a non-terminating error."""

    NO = 0
    YES = 1
    NO_TO_ALL = 2
    YES_TO_ALL = 3


class PromptType(enum.IntEnum):
    NORMAL = 0
    CRITICAL = 1


class WriteMessageChannel(enum.IntEnum):
    WARNING = 0
    VERBOSE = 1
    DEBUG = 2
