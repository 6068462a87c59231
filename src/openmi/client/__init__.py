"""The MI client API: Application → Session → Operation, over the in-process engine or WS-Management."""

from ..cim.requests import BOOKMARK_NEWEST, BOOKMARK_OLDEST
from .application import Application
from .operation import ClassResult, IndicationResult, InstanceResult, Operation
from .options import (
    AuthType,
    DeliveryType,
    DestinationOptions,
    OperationCallbacks,
    OperationOptions,
    SubscriptionDeliveryOptions,
)
from .session import Session

__all__ = ["BOOKMARK_NEWEST", "BOOKMARK_OLDEST", "Application", "AuthType", "ClassResult", "DeliveryType",
           "DestinationOptions", "IndicationResult", "InstanceResult", "Operation", "OperationCallbacks",
           "OperationOptions", "Session", "SubscriptionDeliveryOptions"]
