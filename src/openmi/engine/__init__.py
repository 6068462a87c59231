"""The engine: namespaces, the class registry, providers and the repository; one request in, a stream
of results out. Stands on ``openmi.cim`` only (request records: :mod:`openmi.cim.requests`)."""

from ..cim import requests
from ..cim.namespaces import DEFAULT_NAMESPACE, INTEROP_NAMESPACE, normalize_namespace
from .context import Context, Host
from .query import ProviderQuery
from .server import Server, default_repository_path

__all__ = ["DEFAULT_NAMESPACE", "INTEROP_NAMESPACE", "Context", "Host", "ProviderQuery", "Server",
           "default_repository_path", "normalize_namespace", "requests"]
