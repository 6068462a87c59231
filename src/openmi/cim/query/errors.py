"""QueryError: a query that does not parse or does not fit its class (MI_RESULT_INVALID_QUERY, 15).

Its message starts with ``column N:`` (1-based) whenever the fault can be pinned to a token, so a
user sees where in the text the problem is.
"""

from __future__ import annotations

from ..errors import MIError
from ..types import MIResult


class QueryError(MIError):
    """The query text is not valid for its language or for the class it names.

    ``column`` is the 1-based column of the offending token (``None`` when the query as a whole is at
    fault, e.g. it is too long); ``reason`` is the message without the column prefix.
    """

    def __init__(self, reason: str, column: int | None = None) -> None:
        self.reason = reason
        self.column = column
        super().__init__(MIResult.INVALID_QUERY, f"column {column}: {reason}" if column is not None else reason)

    def __reduce__(self) -> tuple[type[QueryError], tuple[str, int | None]]:
        return (type(self), (self.reason, self.column))
