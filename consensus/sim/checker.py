"""The invariants, checked as the events that could break them happen.

Safety: agreement (and identical state roots), validity (with hash-chain linkage),
certificate validity, no correct signer signs two different messages for one
(height, round, step), no message leaves before the record that covers it is persisted,
and no potential fork: two different values at one height that could each gather a quorum
of precommits in some round, counting the precommits correct validators signed plus every
faulty key (which could sign anything). That catches a broken lock before an actual fork
needs the byzantine keys to play along. Liveness is judged at the end of a run by the
runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sparkchain.consensus.certificate import quorum_size, verify_certificate
from sparkchain.consensus.crypto import Verifier
from sparkchain.consensus.lastsigned import LastSigned
from sparkchain.consensus.messages import (
    NIL,
    CommitCertificate,
    Message,
    Proposal,
    Step,
    Vote,
    VoteType,
)
from sparkchain.consensus.sim.chain import is_valid_value, next_root, value_hash
from sparkchain.identifiers.errors import SparkError

SAFETY: Final = frozenset(
    {"agreement", "validity", "certificate", "double-sign", "persist-order", "potential-fork"}
)
# a run goes on after these (something could happen, not yet did), so that what follows
# (an actual fork) is seen too
WARNINGS: Final = frozenset({"potential-fork"})
LIVENESS: Final = "liveness"


@dataclass(frozen=True)
class Violation:
    kind: str
    time_ms: int
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.time_ms} ms: {self.detail}"


class Checker:
    def __init__(
        self,
        chain_id: str,
        validators_at: Callable[[int], tuple[bytes, ...]],
        correct_keys: frozenset[bytes],
        verifier: Verifier,
    ) -> None:
        """`validators_at(height)`: the set that signs `height` (DESIGN §12)."""
        self._chain_id = chain_id
        self._validators_at = validators_at
        self._correct = correct_keys
        self._verifier = verifier
        self._decided: dict[int, tuple[bytes, bytes, int]] = {}  # height -> value, root, node
        self._signed: dict[tuple[bytes, int, int, int], bytes] = {}
        # (height, round, hash) -> correct validators that precommitted it
        self._precommitted: dict[tuple[int, int, bytes], set[bytes]] = {}
        self._committable: dict[int, tuple[bytes, int]] = {}  # height -> (hash, round)
        self._forkable: set[int] = set()  # heights reported as potential forks
        self.violations: list[Violation] = []
        self.double_signers: set[bytes] = set()  # every key seen signing twice, faulty too
        self.now = 0

    def _violate(self, kind: str, detail: str) -> None:
        self.violations.append(Violation(kind, self.now, detail))

    def on_commit(
        self,
        node: int,
        height: int,
        value: bytes,
        certificate: CommitCertificate,
        prev_root: bytes,
        correct: bool,
    ) -> None:
        if not correct:
            return
        if not is_valid_value(height, value, prev_root):
            self._violate("validity", f"node {node} committed an invalid value at {height}")
        try:
            verify_certificate(
                self._chain_id, self._validators_at(height), certificate, self._verifier
            )
            if certificate.height != height or certificate.block_hash != value_hash(value):
                raise ValueError("certificate is for another block")
        except (SparkError, ValueError) as exc:
            self._violate("certificate", f"node {node} height {height}: {exc}")
        root = next_root(prev_root, value)
        first = self._decided.get(height)
        if first is None:
            self._decided[height] = (value, root, node)
        elif first[0] != value or first[1] != root:
            self._violate(
                "agreement",
                f"height {height}: node {first[2]} committed {first[0][:40]!r}, "
                f"node {node} committed {value[:40]!r}",
            )

    def on_signed(self, node: int, message: Message) -> None:
        """Every message a node sends under its own key (after its strategy, if any)."""
        if isinstance(message, Vote):
            key = (message.validator, message.height, message.round, int(message.type))
        else:
            key = (message.proposer, message.height, message.round, int(Step.PROPOSE))
        signed = message.block_hash
        if (
            isinstance(message, Vote)
            and message.type is VoteType.PRECOMMIT
            and signed != NIL
            and message.validator in self._correct
        ):
            self._note_precommit(message)
        earlier = self._signed.setdefault(key, signed)
        if earlier != signed:
            self.double_signers.add(key[0])
            if key[0] in self._correct:
                self._violate(
                    "double-sign",
                    f"node {node} signed two messages for height {key[1]} round {key[2]} "
                    f"step {Step(key[3]).name}",
                )

    def _note_precommit(self, vote: Vote) -> None:
        signers = self._precommitted.setdefault((vote.height, vote.round, vote.block_hash), set())
        signers.add(vote.validator)
        validators = self._validators_at(vote.height)
        faulty_keys = len(set(validators) - self._correct)
        if len(signers & set(validators)) + faulty_keys < quorum_size(len(validators)):
            return
        first = self._committable.setdefault(vote.height, (vote.block_hash, vote.round))
        if first[0] != vote.block_hash and vote.height not in self._forkable:
            self._forkable.add(vote.height)
            self._violate(
                "potential-fork",
                f"height {vote.height}: {first[0][:4].hex()} (round {first[1]}) and "
                f"{vote.block_hash[:4].hex()} (round {vote.round}) could each be committed "
                f"with the {faulty_keys} faulty keys' precommits",
            )

    def on_broadcast(self, node: int, message: Message, record: LastSigned | None) -> None:
        """A correct node's own message must be covered by its persisted record."""
        step = Step.PROPOSE if isinstance(message, Proposal) else Step(int(message.type))
        here = (message.height, message.round, step)
        if record is None or (record.height, record.round, record.step) < here:
            self._violate("persist-order", f"node {node} sent {here} before persisting it")

    @property
    def decided_heights(self) -> int:
        return len(self._decided)
