"""The MI client API: Application → Session → Operation, over the in-process engine or WS-Management."""

from .application import Application
from .operation import ClassResult, InstanceResult, Operation
from .options import AuthType, DestinationOptions, OperationCallbacks, OperationOptions
from .session import Session

__all__ = ["Application", "AuthType", "ClassResult", "DestinationOptions", "InstanceResult", "Operation",
           "OperationCallbacks", "OperationOptions", "Session"]
