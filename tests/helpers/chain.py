"""Builders for keys, genesis files, signed txs and an in-memory chain of rules.

Everything is deterministic: keys come from names, nonces from a seeded Random, times from
the block clock of `RulesChain`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable

from sparkchain.identifiers.accounts import AccountKey
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.hashing import HashAlgorithm
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.sm2 import Sm2SigningKey
from sparkchain.identifiers.tx import TxBuilder, approve_body, governance_body, value
from sparkchain.ledger.genesis import Genesis, apply_genesis, make_genesis
from sparkchain.ledger.rules import MemoryState, Receipt, execute_tx
from sparkchain.proto import types_pb2 as pb

__all__ = [
    "CHAIN_ID",
    "GENESIS_TIME_MS",
    "URL_VALUE",
    "RulesChain",
    "TxMaker",
    "bid_of",
    "given_record",
    "given_registrar",
    "given_revoked",
    "governance_tx",
    "key",
    "make_test_genesis",
    "sm2_key",
    "update",
    "value",
]

CHAIN_ID = "sparkchain-test"
GENESIS_TIME_MS = 1_764_000_000_000
BLOCK_INTERVAL_MS = 1000


def key(name: str) -> SigningKey:
    """The same key for the same name, in every run."""
    return SigningKey.from_seed(hashlib.sha256(b"test key " + name.encode()).digest())


def sm2_key(name: str) -> Sm2SigningKey:
    """The same SM2 key for the same name, in every run."""
    digest = hashlib.sha256(b"test sm2 key " + name.encode()).digest()
    return Sm2SigningKey.from_scalar(int.from_bytes(digest, "big") >> 8 or 1)


def bid_of(name_or_key: str | AccountKey) -> str:
    signing_key = key(name_or_key) if isinstance(name_or_key, str) else name_or_key
    return bid_from_public_key(signing_key.public_key)


class TxMaker(TxBuilder):
    """A TxBuilder whose nonces come from a seeded Random, so tx ids repeat across runs."""

    def __init__(self, chain_id: str, signing_key: AccountKey, seed: int = 0) -> None:
        super().__init__(chain_id, signing_key, random.Random(seed))

    @property
    def bid(self) -> str:
        return bid_from_public_key(self.key.public_key)


def make_test_genesis(
    validators: int = 4,
    root_authorities: Iterable[str] = ("root",),
    prefixes: Iterable[tuple[str, str]] = (("88", "acme"),),
    chain_id: str = CHAIN_ID,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
) -> Genesis:
    """A genesis whose authorities and prefix owners are given by key *names*."""
    return make_genesis(
        chain_id,
        GENESIS_TIME_MS,
        [(f"node{i}", key(f"validator{i}").public_key) for i in range(1, validators + 1)],
        [bid_of(name) for name in root_authorities],
        [(prefix, bid_of(owner)) for prefix, owner in prefixes],
        hash_algorithm,
    )


class RulesChain:
    """A MemoryState started from a genesis, executing txs block by block with the rules."""

    def __init__(self, genesis: Genesis | None = None) -> None:
        self.genesis = genesis or make_test_genesis()
        self.state = MemoryState()
        apply_genesis(self.state, self.genesis)
        self.height = 1
        self.time_ms = self.genesis.genesis_time_ms + BLOCK_INTERVAL_MS
        self._makers: dict[str, TxMaker] = {}

    def signer(self, name: str) -> TxMaker:
        """The tx builder of the key called `name` (seeded by the name)."""
        if name not in self._makers:
            seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
            self._makers[name] = TxMaker(self.genesis.chain_id, key(name), seed)
        return self._makers[name]

    @property
    def now_ms(self) -> int:
        return self.time_ms

    def apply(self, signed: pb.SignedTx) -> Receipt:
        """Execute one tx in the current block (raises SparkError when it breaks a rule)."""
        return execute_tx(
            self.state,
            signed,
            self.genesis.chain_id,
            self.height,
            self.time_ms,
            root_authorities=self.genesis.root_authorities,
            genesis_validators=[(v.name, v.public_key) for v in self.genesis.validators],
            hash_fn=self.genesis.hash_fn,
        )

    def next_block(self, interval_ms: int = BLOCK_INTERVAL_MS) -> None:
        self.height += 1
        self.time_ms += interval_ms

    def record(self, identifier_key: str) -> pb.Record | None:
        return self.state.get_record(identifier_key)

    def prefix(self, prefix_key: str) -> pb.PrefixRecord | None:
        return self.state.get_prefix(prefix_key)


# ---- set-up verbs for rule tests on the default test genesis (acme owns 88)

URL_VALUE = value(1, "URL", "https://example.com/p/1")


def given_registrar(chain: RulesChain, name: str = "reg", prefix: str = "88") -> None:
    chain.apply(
        chain.signer("acme").set_registrars(prefix, add=[bid_of(name)], now_ms=chain.now_ms)
    )


def given_record(chain: RulesChain, identifier: str = "88/p-1", by: str = "acme") -> None:
    chain.apply(chain.signer(by).register(identifier, [URL_VALUE], now_ms=chain.now_ms))


def given_revoked(chain: RulesChain, identifier: str = "88/p-1") -> None:
    given_record(chain, identifier)
    chain.apply(chain.signer("acme").revoke(identifier, "recalled", now_ms=chain.now_ms))


# ---- membership: the test genesis's validators are node1..node4, keys validator1..4


def update(
    add: Iterable[tuple[str, str]] = (),
    remove: Iterable[str] = (),
    rotate: Iterable[tuple[str, str]] = (),
) -> pb.UpdateValidators:
    """An UpdateValidators op; keys by *name* (`key(name)`), `add` as (name, key name)."""
    op = pb.UpdateValidators(remove=list(remove))
    for name, key_name in add:
        op.add.add(name=name, public_key=key(key_name).public_key)
    for name, key_name in rotate:
        op.rotate.add(name=name, public_key=key(key_name).public_key)
    return op


def governance_tx(
    chain: RulesChain,
    op: pb.UpdateValidators,
    approvers: Iterable[str] = ("validator1", "validator2", "validator3"),
    *,
    nonce: int = 1,
    chain_id: str = CHAIN_ID,
) -> pb.SignedTx:
    """`op` in a governance envelope approved by the keys named (three of the four test
    validators by default: a quorum)."""
    body = governance_body(chain_id, nonce, chain.now_ms + 60_000, op)
    return pb.SignedTx(body=body, approvals=[approve_body(body, key(n)) for n in approvers])
