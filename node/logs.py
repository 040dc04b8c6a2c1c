"""Structured logs: one JSON object per line on stderr (the launcher appends it to
DIR/node.log). Fields passed as `extra={...}` become keys of the object, so a line reads
{"ts": ..., "level": "info", "logger": "spark.peers", "event": "peer_up", "peer": ...}."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from sparkchain.identifiers.limits import LOG_RATE_INTERVAL_MS, LOG_RATE_KEYS

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def round_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading), for an "ms" field."""
    return round((time.perf_counter() - started) * 1000, 1)


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(slots=True)
class _Window:
    started_ms: int
    left_out: int = 0


class RateLimitedLog:
    """Lines about input an outsider controls (a malformed request, a peer's undecodable
    block): at most one per key per interval, so that sending bad input fast cannot fill
    the log. The next line written for a key says how many were left out (`left_out`).

    Keys are bounded too (LOG_RATE_KEYS, the least recently logged forgotten first); the
    caller picks keys from a bounded set where it can (a gRPC method, a validator)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_ms: int = LOG_RATE_INTERVAL_MS,
        *,
        max_keys: int = LOG_RATE_KEYS,
        clock_ms: Callable[[], int] = monotonic_ms,
    ) -> None:
        self._logger = logger
        self._interval_ms = interval_ms
        self._max_keys = max_keys
        self._clock_ms = clock_ms
        self._windows: OrderedDict[Hashable, _Window] = OrderedDict()

    def log(
        self,
        level: int,
        key: Hashable,
        event: str,
        fields: dict[str, object],
        *,
        exc_info: bool = False,
    ) -> bool:
        """Write `event` with `fields` unless a line for `key` was written within the
        interval; returns whether it was written."""
        now = self._clock_ms()
        window = self._windows.get(key)
        if window is not None and now - window.started_ms < self._interval_ms:
            window.left_out += 1
            return False
        left_out = window.left_out if window is not None else 0
        self._windows[key] = _Window(now)
        self._windows.move_to_end(key)
        while len(self._windows) > self._max_keys:
            self._windows.popitem(last=False)
        self._logger.log(level, event, extra={**fields, "left_out": left_out}, exc_info=exc_info)
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # gRPC's own asyncio chatter is not ours to report at info
    logging.getLogger("grpc").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("asyncio").setLevel(max(logging.WARNING, root.level))
