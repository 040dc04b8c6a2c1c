"""Encoded gateway answers of one committed height (node/gateway.py).

An answer is a function of the request and the committed state, and the state changes only
when the height does: so an answer encoded once serves every later identical request until
the next commit. Keys are the request as given (a handle's spelling is echoed back), and
only successful answers are kept, so requests for handles that do not exist fill nothing.
Bounded in entries and bytes (identifiers/limits.py): when full, it starts again empty.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from sparkchain.identifiers.limits import HTTP_ANSWER_CACHE_BYTES, HTTP_ANSWER_CACHE_ENTRIES

Answer = TypeVar("Answer")


class AnswerCache(Generic[Answer]):
    def __init__(
        self, entries: int = HTTP_ANSWER_CACHE_ENTRIES, max_bytes: int = HTTP_ANSWER_CACHE_BYTES
    ) -> None:
        self._entries = entries
        self._max_bytes = max_bytes
        self._height = -1
        self._answers: dict[str, tuple[Answer, int]] = {}
        self._bytes = 0

    def get(self, height: int, key: str) -> Answer | None:
        """The answer kept for `key` at `height`, or None."""
        if height != self._height:
            self._start(height)
            return None
        kept = self._answers.get(key)
        return kept[0] if kept is not None else None

    def put(self, height: int, key: str, answer: Answer, size: int) -> None:
        """Keep `answer` (`size` bytes), read at `height`; one of an older height is not."""
        if height < self._height:
            return
        if height != self._height:
            self._start(height)
        if size > self._max_bytes:
            return
        if len(self._answers) >= self._entries or self._bytes + size > self._max_bytes:
            self._start(height)
        earlier = self._answers.get(key)
        self._bytes += size - (earlier[1] if earlier is not None else 0)
        self._answers[key] = (answer, size)

    def __len__(self) -> int:
        return len(self._answers)

    def _start(self, height: int) -> None:
        self._height = height
        self._answers = {}
        self._bytes = 0
