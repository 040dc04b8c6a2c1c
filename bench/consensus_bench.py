"""Consensus core speed: what the core costs per vote on top of the signature check.

Every vote a validator receives costs one Ed25519 verification; the core's own work (sign
bytes, bookkeeping, the upon-rules) should add little to it. Measured in one run:
- raw Ed25519 verifications/s (parsed keys, the same messages the core checks);
- the core fed whole heights of signed messages (an observer of n = 7): messages/s, and its
  overhead per message over the raw verification;
- the same core with a signature check that costs nothing, which isolates its own work;
- simulated heights/s of n = 4 and n = 7 validators with real Ed25519 (every validator
  signs and verifies everything: n cores in one process).

Goal (issue 4): the core's own overhead < 25% of the signature cost per vote.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings

from bench.report import print_table, rate
from sparkchain.consensus import (
    Commit,
    ConsensusCore,
    Ed25519Verifier,
    Message,
    Proposal,
    Verifier,
    Vote,
    VoteType,
)
from sparkchain.consensus.signbytes import chain_prefix, proposal_sign_bytes, vote_sign_bytes
from sparkchain.consensus.sim.plan import Plan
from sparkchain.consensus.sim.runner import run_plan
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.tags import PROPOSAL_TAG, VOTE_TAG

GOAL_OVERHEAD = 0.25
CHAIN_ID = "bench-chain"
VALIDATORS = 7


class _App:
    def propose(self, height: int, round: int) -> bytes:
        return b"block %d" % height

    def validate(self, height: int, value: bytes) -> bool:
        return True

    def value_hash(self, value: bytes) -> bytes:
        return hashlib.sha256(value).digest()


class _FreeVerifier:
    """Accepts everything: the core's cost with signature checking taken out."""

    def verify(self, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
        return True


class _RecordingVerifier(Ed25519Verifier):
    """Notes every verification the core asks for (an untimed run), for the baseline."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[bytes, bytes, bytes, bytes]] = []

    def verify(self, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
        self.asked.append((public_key, tag, message, signature))
        return super().verify(public_key, tag, message, signature)


Signed = tuple[bytes, bytes, bytes, bytes]  # key, tag, sign bytes, signature


@dataclass(frozen=True)
class _Height:
    messages: tuple[Message, ...]


def _heights(count: int) -> tuple[list[bytes], list[_Height]]:
    keys = [
        SigningKey.from_seed(hashlib.sha256(b"bench-%d" % i).digest()) for i in range(VALIDATORS)
    ]
    validators = [k.public_key for k in keys]
    prefix = chain_prefix(CHAIN_ID)
    app = _App()
    heights = []
    for height in range(1, count + 1):
        value = app.propose(height, 0)
        block_hash = app.value_hash(value)
        proposer = keys[height % VALIDATORS]
        sign_bytes = proposal_sign_bytes(prefix, height, 0, -1, block_hash)
        signature = proposer.sign(PROPOSAL_TAG, sign_bytes)
        messages: list[Message] = [
            Proposal(height, 0, -1, block_hash, value, proposer.public_key, signature)
        ]
        for kind in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            for key in keys:
                sign_bytes = vote_sign_bytes(prefix, kind, height, 0, block_hash)
                signature = key.sign(VOTE_TAG, sign_bytes)
                messages.append(Vote(kind, height, 0, block_hash, key.public_key, signature))
        heights.append(_Height(tuple(messages)))
    return validators, heights


def _raw_seconds(asked: list[Signed]) -> float:
    # the same library the core uses (libsodium through PyNaCl), called directly
    started = time.perf_counter()
    for key, tag, message, signature in asked:
        nacl.bindings.crypto_sign_open(signature + tag + message, key)
    return time.perf_counter() - started


def _core_seconds(validators: list[bytes], heights: list[_Height], verifier: Verifier) -> float:
    core = ConsensusCore(CHAIN_ID, validators, None, _App(), verifier=verifier)
    commits = 0
    started = time.perf_counter()
    for height in heights:
        core.start(height.messages[0].height)
        for message in height.messages:
            effects = core.on_message(message)
            commits += any(isinstance(e, Commit) for e in effects)
    elapsed = time.perf_counter() - started
    assert commits == len(heights), "the observer must commit every height"
    return elapsed


def _free_verify_seconds(asked: list[Signed]) -> float:
    free = _FreeVerifier()
    started = time.perf_counter()
    for key, tag, message, signature in asked:
        free.verify(key, tag, message, signature)
    return time.perf_counter() - started


def _best(repeat: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(repeat))


def _simulated_heights_per_s(n: int, heights: int) -> tuple[float, int]:
    plan = Plan(seed=1, n=n, heights=heights, real_crypto=True, max_delay_ms=5)
    started = time.perf_counter()
    result = run_plan(plan)
    elapsed = time.perf_counter() - started
    assert result.finished and not result.violations, result.violations
    return heights / elapsed, result.events


def run(quick: bool) -> None:
    count = 40 if quick else 300
    repeat = 2 if quick else 5
    validators, heights = _heights(count)
    messages = sum(len(h.messages) for h in heights)
    recording = _RecordingVerifier()
    _core_seconds(validators, heights, recording)  # which signatures the core checks
    asked = recording.asked
    checks = len(asked)
    raw = _best(repeat, lambda: _raw_seconds(asked))
    core = _best(repeat, lambda: _core_seconds(validators, heights, Ed25519Verifier()))
    core_free = _best(repeat, lambda: _core_seconds(validators, heights, _FreeVerifier()))
    free_calls = _best(repeat, lambda: _free_verify_seconds(asked))
    raw_us = raw / checks * 1e6
    overhead_us = (core - raw) / checks * 1e6
    own_us = (core_free - free_calls) / checks * 1e6
    rows = [
        ["raw Ed25519 verify (libsodium, called directly)", rate(checks / raw), f"{raw_us:.1f}"],
        [
            f"core, n = {VALIDATORS} observer, Ed25519 (whole heights)",
            rate(checks / core),
            f"{core / checks * 1e6:.1f}",
        ],
        ["  core overhead over raw verify", "", f"{overhead_us:.1f}"],
        ["core with a free signature check", rate(checks / core_free), f"{own_us:.1f}"],
    ]
    share = overhead_us / raw_us
    own_share = own_us / raw_us
    goals = [
        ("baseline", None),
        ("-", None),
        (f"< {GOAL_OVERHEAD:.0%} of verify: {share:.0%}", share < GOAL_OVERHEAD),
        (f"< {GOAL_OVERHEAD:.0%} of verify: {own_share:.0%}", own_share < GOAL_OVERHEAD),
    ]
    print_table(
        "Consensus core: cost per signature check (proposal and votes of whole heights)",
        ["measurement", "checks/s", "µs/check"],
        rows,
        goals=goals,
        caption=(
            f"{count} heights, {messages} messages of which {checks} checked (votes after "
            f"the decision are dropped unchecked), best of {repeat}"
        ),
    )
    sim_heights = 5 if quick else 40
    sim_rows = []
    for n in (4, 7):
        per_s, events = _simulated_heights_per_s(n, sim_heights)
        sim_rows.append([f"n = {n}, Ed25519, healthy network", rate(per_s), f"{events:,}"])
    print_table(
        "Simulated cluster (all validators in one process, one core of CPU)",
        ["scenario", "heights/s", "events"],
        sim_rows,
        caption=f"{sim_heights} heights each; every validator signs and verifies everything",
    )
