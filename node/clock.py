"""The node's wall clock, and the test-only skew the fault harness gives it (tests/chaos).

`SPARK_TEST_CLOCK_OFFSET_MS` (an integer of milliseconds, may be negative) moves every
wall-clock reading of this node process by that much: block times it proposes, mempool
expiry, and the pacing of empty blocks. It exists to test the protocol under a skewed clock
(docs/architecture.md, "Time") and is not a setting for operators: a real node's clock is
the host's, kept by NTP. It is read once at start; a bad value stops start-up naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.mempool import wall_clock_ms

TEST_CLOCK_OFFSET_ENV = "SPARK_TEST_CLOCK_OFFSET_MS"
# a day either way: enough for any skew test, and a typo of many digits is caught
MAX_TEST_CLOCK_OFFSET_MS = 24 * 60 * 60 * 1000


def clock_offset_ms(environ: Mapping[str, str] = os.environ) -> int:
    """The offset named by SPARK_TEST_CLOCK_OFFSET_MS, 0 when unset."""
    text = environ.get(TEST_CLOCK_OFFSET_ENV, "").strip()
    if not text:
        return 0
    try:
        offset = int(text)
    except ValueError:
        raise SparkError(
            ErrorCode.INVALID_CONFIG,
            f"{TEST_CLOCK_OFFSET_ENV}: expected an integer of milliseconds, got {text!r}",
        ) from None
    if abs(offset) > MAX_TEST_CLOCK_OFFSET_MS:
        raise SparkError(
            ErrorCode.INVALID_CONFIG,
            f"{TEST_CLOCK_OFFSET_ENV}: {offset} is beyond ±{MAX_TEST_CLOCK_OFFSET_MS} ms",
        )
    return offset


def node_clock(environ: Mapping[str, str] = os.environ) -> Callable[[], int]:
    """The wall clock (ms since 1970) this node reads, skewed only under the test variable."""
    offset = clock_offset_ms(environ)
    if offset == 0:
        return wall_clock_ms

    def skewed_clock_ms() -> int:
        return wall_clock_ms() + offset

    return skewed_clock_ms
