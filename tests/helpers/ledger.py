"""Builders for ledgers on disk: open one, commit blocks with quorum certificates.

Certificates are real: a quorum of the test validators (tests/helpers/chain.py keys
`validator1..n`) sign PRECOMMIT votes over the canonical sign bytes, so they verify with
consensus.certificate.verify_certificate.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sparkchain.consensus.certificate import quorum_size
from sparkchain.consensus.messages import VoteType
from sparkchain.consensus.signbytes import chain_prefix, vote_sign_bytes
from sparkchain.identifiers.tags import VOTE_TAG
from sparkchain.ledger.genesis import Genesis, genesis_to_json
from sparkchain.node.home import NodeHome
from sparkchain.node.ledger import BuiltBlock, Ledger
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import BLOCK_INTERVAL_MS, TxMaker, key, make_test_genesis, value


def certificate(
    genesis: Genesis, height: int, block_hash: bytes, round_: int = 0, signers: int | None = None
) -> pb.CommitCertificate:
    """Precommits of the first `signers` validators (default: a quorum) for the block."""
    count = quorum_size(len(genesis.validators)) if signers is None else signers
    sign_bytes = vote_sign_bytes(
        chain_prefix(genesis.chain_id), VoteType.PRECOMMIT, height, round_, block_hash
    )
    cert = pb.CommitCertificate(height=height, round=round_, block_hash=block_hash)
    for number in range(1, count + 1):
        validator = key(f"validator{number}")
        cert.signatures.add(
            validator=validator.public_key, signature=validator.sign(VOTE_TAG, sign_bytes)
        )
    return cert


def proposer(genesis: Genesis) -> bytes:
    return genesis.validators[0].public_key


class LedgerChain:
    """A ledger on disk plus the clock and tx makers to grow it block by block."""

    def __init__(
        self,
        path: Path,
        genesis: Genesis | None = None,
        *,
        verify_signatures: bool = True,
        keep_heights: int = 0,
    ) -> None:
        self.path = path
        self.genesis = genesis or make_test_genesis()
        self.ledger = Ledger.open(
            path, self.genesis, verify_signatures=verify_signatures, keep_heights=keep_heights
        )
        self._makers: dict[str, TxMaker] = {}

    def signer(self, name: str, seed: int = 0) -> TxMaker:
        if name not in self._makers:
            self._makers[name] = TxMaker(self.genesis.chain_id, key(name), seed)
        return self._makers[name]

    @property
    def next_time_ms(self) -> int:
        return self.ledger.last_block_time_ms + BLOCK_INTERVAL_MS

    def build(self, txs: Iterable[pb.SignedTx] = ()) -> BuiltBlock:
        return self.ledger.build_block(list(txs), self.next_time_ms, proposer(self.genesis))

    def commit(self, txs: Iterable[pb.SignedTx] = ()) -> BuiltBlock:
        """Build, then commit the block with a quorum certificate; returns what was built."""
        built = self.build(txs)
        self.ledger.commit_block(
            built.pending, certificate(self.genesis, built.pending.height, built.block_hash)
        )
        return built

    def reopen(self, keep_heights: int | None = None) -> None:
        """Close and open again, with the same keep_heights unless another is given."""
        self.ledger.close()
        self.ledger = Ledger.open(
            self.path,
            self.genesis,
            verify_signatures=self.ledger.verify_signatures,
            keep_heights=self.ledger.keep_heights if keep_heights is None else keep_heights,
        )

    def close(self) -> None:
        self.ledger.close()


def register_widget(chain: LedgerChain) -> BuiltBlock:
    """Commit `88/Widget-1` (owner acme) with values at indexes 1 (URL), 2 (EMAIL) and 1001."""
    values = [
        value(1, "URL", "https://example.com/p/1"),
        value(2, "EMAIL", "ops@example.com"),
        value(1001, "URL", "https://templates/t1"),
    ]
    acme = chain.signer("acme")
    return chain.commit([acme.register("88/Widget-1", values, now_ms=chain.next_time_ms)])


def stopped_node_home(root: Path, blocks: int, registrations_per_block: int) -> NodeHome:
    """A stopped node's home (genesis.json and data/ledger/) whose chain holds `blocks`
    blocks of registrations `88/v<height>-<i>` by acme; no config or key."""
    home = NodeHome(root)
    root.mkdir(parents=True)
    genesis = make_test_genesis()
    home.genesis_path.write_text(genesis_to_json(genesis))
    chain = LedgerChain(home.ledger_dir, genesis)
    acme = chain.signer("acme")
    for height in range(1, blocks + 1):
        now = chain.next_time_ms
        names = [f"88/v{height}-{i}" for i in range(registrations_per_block)]
        chain.commit([acme.register(name, now_ms=now) for name in names])
    chain.close()
    return home
