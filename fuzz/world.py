"""The small chain every fuzz target runs against, built once per process.

A test genesis (four validators, `88` owned by acme) after one committed block that
registered `88/Widget-1`: on disk for block validation and sync, and as a plain in-memory
state for the rules, which each input sees through a fresh `Overlay` (so an input that
passes every rule changes nothing for the next one, and a crash replays alone). Keys and tx
nonces are seeded by name: the seeds written from here are the same on every run.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from sparkchain.identifiers.tx import check_signed_tx
from sparkchain.ledger.genesis import Genesis, apply_genesis, parse_genesis
from sparkchain.ledger.rules import MemoryState, apply_tx
from sparkchain.node.ledger import Ledger
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import value
from tests.helpers.ledger import LedgerChain, certificate, register_widget

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"
NEXT_HEIGHT = 2


@dataclass(frozen=True)
class World:
    genesis: Genesis
    ledger: Ledger  # at height 1
    state: MemoryState  # the ledger's state, for the rules alone
    next_time_ms: int  # the time of block 2
    seed_txs: tuple[pb.SignedTx, ...]  # each valid on its own in block 2
    next_block: bytes  # a valid block 2 (the first three seed txs)
    next_certificate: pb.CommitCertificate  # a quorum's certificate of next_block
    bundle_genesis: Genesis  # the genesis of the proof-bundle vectors (tests/vectors/)

    @property
    def genesis_validators(self) -> list[tuple[str, bytes]]:
        return [(v.name, v.public_key) for v in self.genesis.validators]


@dataclass
class Overlay:
    """A `StateView` whose writes stay here, over a state that is only read."""

    base: MemoryState
    records: dict[str, pb.Record] = field(default_factory=dict)
    prefixes: dict[str, pb.PrefixRecord] = field(default_factory=dict)
    tx_ids: set[bytes] = field(default_factory=set)
    schedule: pb.ValidatorSchedule | None = None

    def get_record(self, key: str) -> pb.Record | None:
        return self.records[key] if key in self.records else self.base.get_record(key)

    def put_record(self, key: str, record: pb.Record) -> None:
        self.records[key] = record

    def get_prefix(self, key: str) -> pb.PrefixRecord | None:
        return self.prefixes[key] if key in self.prefixes else self.base.get_prefix(key)

    def put_prefix(self, key: str, prefix: pb.PrefixRecord) -> None:
        self.prefixes[key] = prefix

    def has_tx(self, tx_id: bytes) -> bool:
        return tx_id in self.tx_ids or self.base.has_tx(tx_id)

    def add_tx(self, tx_id: bytes) -> None:
        self.tx_ids.add(tx_id)

    def get_validator_schedule(self) -> pb.ValidatorSchedule | None:
        return self.schedule or self.base.get_validator_schedule()

    def put_validator_schedule(self, schedule: pb.ValidatorSchedule) -> None:
        self.schedule = schedule


@cache
def world() -> World:
    folder = Path(tempfile.mkdtemp(prefix="spark-fuzz-"))
    atexit.register(shutil.rmtree, folder, True)
    chain = LedgerChain(folder / "ledger")
    genesis = chain.genesis
    first = register_widget(chain)
    state = MemoryState()
    apply_genesis(state, genesis)
    validators = [(v.name, v.public_key) for v in genesis.validators]
    for signed in first.block.txs:
        body = check_signed_tx(signed, genesis.chain_id)
        apply_tx(
            state,
            signed,
            body,
            1,
            first.pending.header.time_ms,
            root_authorities=genesis.root_authorities,
            genesis_validators=validators,
        )
    now = chain.next_time_ms
    acme = chain.signer("acme")
    bob = chain.signer("bob").bid
    meta = '{"model": "W-2", "parts": [1, 2.5, {"n": null}], "ok": true}'
    txs = (
        acme.register("88/Widget-2", [value(1, "URL", "https://example.com/2")], now_ms=now),
        acme.update("88/Widget-1", [value(2000, "spark.meta", meta)], [2], now_ms=now),
        acme.set_registrars("88", [chain.signer("reg").bid], now_ms=now),
        acme.create_prefix("88.608", acme.bid, now_ms=now),
        acme.register_batch("88", [("B-1", []), ("B-2/x", [value(7, "EMAIL", "b@x")])], now_ms=now),
        acme.transfer("88/Widget-1", bob, now_ms=now),
        acme.revoke("88/Widget-1", "recalled", now_ms=now),
        acme.transfer_prefix("88", bob, now_ms=now),
        acme.register("88/01/09506000134352/10/LOT%201", owner=bob, now_ms=now),
    )
    built = chain.build(txs[:3])
    return World(
        genesis=genesis,
        ledger=chain.ledger,
        state=state,
        next_time_ms=now,
        seed_txs=txs,
        next_block=built.block_bytes,
        next_certificate=certificate(genesis, NEXT_HEIGHT, built.block_hash),
        bundle_genesis=parse_genesis((VECTORS / "genesis.json").read_bytes()),
    )
