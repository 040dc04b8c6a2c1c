"""What the core needs from its surroundings: the application and the timeout schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sparkchain.consensus.messages import Step
from sparkchain.identifiers.limits import (
    DEFAULT_PRECOMMIT_TIMEOUT_MS,
    DEFAULT_PREVOTE_TIMEOUT_MS,
    DEFAULT_PROPOSE_TIMEOUT_MS,
    DEFAULT_TIMEOUT_DELTA_MS,
)


class Application(Protocol):
    """The values the validators agree on are opaque bytes (a serialized block).

    `validate` may be costly (it executes the block); the core asks at most once per
    value hash and height. `value_hash` must be collision resistant (SHA-256 of the header).
    """

    def propose(self, height: int, round: int) -> bytes: ...

    def validate(self, height: int, value: bytes) -> bool: ...

    def value_hash(self, value: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Timeouts grow linearly with the round, so that after GST they outgrow message delays
    (the paper's liveness argument needs timeoutX(r) to increase with r)."""

    propose_ms: int = DEFAULT_PROPOSE_TIMEOUT_MS
    prevote_ms: int = DEFAULT_PREVOTE_TIMEOUT_MS
    precommit_ms: int = DEFAULT_PRECOMMIT_TIMEOUT_MS
    delta_ms: int = DEFAULT_TIMEOUT_DELTA_MS

    def delay_ms(self, step: Step, round: int) -> int:
        if step is Step.PROPOSE:
            base = self.propose_ms
        elif step is Step.PREVOTE:
            base = self.prevote_ms
        elif step is Step.PRECOMMIT:
            base = self.precommit_ms
        else:
            # ROUND: twice a whole round's timeouts (see ConsensusCore: the round timer)
            base = 2 * (self.propose_ms + self.prevote_ms + self.precommit_ms)
            return base + 6 * round * self.delta_ms
        return base + round * self.delta_ms
