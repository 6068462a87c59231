"""What a provider's ``query_instances`` receives: the parsed query, compiled for the provider's class.

A provider that can filter (a process list asked for ``WHERE ProcessId = 4``) implements::

    def query_instances(self, ctx, namespace, class_name, query):
        if not can_filter(query.tree.where):
            return None                      # not capable: the engine enumerates and filters instead
        query.filtered = True                # say so when everything returned satisfies WHERE
        return [...]

Without ``query.filtered`` the engine checks each returned instance itself; projection (``SELECT a, b``)
is always the engine's job. Raising MIError(NOT_SUPPORTED) before returning anything also means "not
capable" (WMI's WBEM_E_PROVIDER_NOT_CAPABLE).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cim.instance import Instance
from ..cim.query import CompiledQuery, SelectQuery


@dataclass
class ProviderQuery:
    """A query as handed to a provider (OMI's filter-capable providers get the same: dialect, text, tree)."""

    dialect: str            # "WQL" or "CQL"
    text: str
    tree: SelectQuery
    compiled: CompiledQuery
    #: set by the provider when every instance it returns satisfies the WHERE clause
    filtered: bool = False

    def matches(self, instance: Instance) -> bool:
        """Whether an instance satisfies the WHERE clause (the engine's own check, offered to providers)."""
        return self.compiled.matches(instance)

    @property
    def properties(self) -> tuple[str, ...] | None:
        """The selected properties (``None`` for ``SELECT *``); a provider may skip computing the others."""
        return self.compiled.properties
