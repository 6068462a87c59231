"""MIError: an MI_Result that is not OK, with its message and CIM_Error-shaped details."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .types import MIResult

if TYPE_CHECKING:
    from .instance import Instance


class MIError(Exception):
    """An operation ended with a result other than OK.

    ``result`` is the MI_Result, ``message`` the human-readable text and ``details`` the
    error instance (a CIM_Error subclass) when one exists.
    """

    def __init__(self, result: int, message: str | None = None, details: Instance | None = None) -> None:
        try:
            self.result: MIResult | int = MIResult(result)
        except ValueError:
            self.result = int(result)
        self.message: str = message if message else _describe(self.result)
        self.details = details
        super().__init__(self.result, self.message)

    def __str__(self) -> str:
        name = self.result.mi_name if isinstance(self.result, MIResult) else f"MI_RESULT {self.result}"
        return f"{name}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (int(self.result), self.message, self.details))


def _describe(result: MIResult | int) -> str:
    if isinstance(result, MIResult):
        return result.description
    return f"The operation failed with result {result}."


class MOFError(MIError):
    """A MOF compilation failed; ``errors`` lists every problem found (``file:line:column: text``)."""

    def __init__(self, errors: list[str], result: int = MIResult.FAILED) -> None:
        self.errors = list(errors)
        super().__init__(result, "\n".join(self.errors) if self.errors else None)
