"""Case-insensitive, order-keeping collections of named CIM elements (CIM names ignore case)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, ValuesView
from typing import Generic, Protocol, TypeVar


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class NamedItems(Mapping[str, T], Generic[T]):
    """A read-mostly mapping ``name -> item`` whose lookup ignores case and keeps insertion order.

    Iterating yields the names as they were first written; ``.items_list()`` yields the items.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: dict[str, T] = {}
        for item in items:
            self.add(item)

    def add(self, item: T, replace: bool = False) -> None:
        key = item.name.lower()
        if key in self._items and not replace:
            raise ValueError(f"duplicate name {item.name!r}")
        self._items[key] = item

    def remove(self, name: str) -> None:
        del self._items[name.lower()]

    def __getitem__(self, name: str) -> T:
        return self._items[name.lower()]

    def get(self, name: str, default: T | None = None) -> T | None:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (item.name for item in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> ValuesView[T]:
        return self._items.values()  # the mapping's own view: no per-item lookup through the ABC

    def items_list(self) -> list[T]:
        return list(self._items.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NamedItems):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        return f"NamedItems({list(self._items.values())!r})"
