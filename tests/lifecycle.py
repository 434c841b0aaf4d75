"""The context-manager shape shared by the test helpers that start something."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

_M = TypeVar("_M", bound="Managed")


class Managed:
    """``with helper:`` starts it, and closes it on exit or when the start fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _M) -> _M:
        try:
            self.start()
        except BaseException:
            self.close()  # a half-started process must not outlive a failed start
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
