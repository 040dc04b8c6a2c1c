"""A two-validator testnet with a little of everything for the explorer's tests: a prefix
with a child prefix and a registrar, products (one a GS1 key), a revoked record, a record
transferred to another account, and enough records under one prefix to page through."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.tx import TxBuilder, tx_id, value
from sparkchain.node.mempool import wall_clock_ms as now_ms
from tests.helpers.cluster import Cluster, http_base

PREFIX = "88.608"
CHILD_PREFIX = "88.608.7"
PRODUCT = f"{PREFIX}/SN-0001"
GTIN = "09506000134352"
GS1_PRODUCT = f"{PREFIX}/01/{GTIN}/21/SN-1"
GS1_GTIN_RECORD = f"{PREFIX}/01/{GTIN}"  # what a GTIN alone (or another serial) finds
REVOKED = f"{PREFIX}/Recalled-1"
OWNED_BY_ALICE = f"{PREFIX}/Alice-Pump"
PAGED = [f"{PREFIX}/P-{i}" for i in range(5)]


@dataclass
class ExplorerNet:
    cluster: Cluster
    base: str  # http://127.0.0.1:PORT of node2's gateway
    root_bid: str
    alice_bid: str
    register_tx_id: str  # the tx that registered PRODUCT


def start_explorer_net(directory: Path) -> ExplorerNet:
    """Start and populate the testnet; the caller stops it (`cluster.stop_all()`)."""
    cluster = Cluster(directory, validators=2).init()
    try:
        cluster.start()
        root = cluster.root_key()
        alice = SigningKey.generate()
        root_bid = bid_from_public_key(root.public_key)
        alice_bid = bid_from_public_key(alice.public_key)
        txs = TxBuilder(cluster.genesis_chain_id(), root, secrets.SystemRandom())

        def commit(tx: Any) -> None:
            answer = cluster.submit("node1", tx)
            assert answer.committed, answer.error_message

        url = "https://example.com/"
        commit(txs.create_prefix(PREFIX, root_bid, now_ms=now_ms()))
        commit(txs.create_prefix(CHILD_PREFIX, root_bid, now_ms=now_ms()))
        commit(txs.set_registrars(PREFIX, add=[alice_bid], now_ms=now_ms()))
        registered = txs.register(
            PRODUCT,
            [value(1, "URL", url + "sn-0001"), value(2, "EMAIL", "ops@example.com")],
            now_ms=now_ms(),
        )
        commit(registered)
        commit(txs.register(GS1_PRODUCT, [value(1, "URL", url + "gs1")], now_ms=now_ms()))
        commit(txs.register(GS1_GTIN_RECORD, [value(1, "URL", url + "gtin")], now_ms=now_ms()))
        commit(txs.register(REVOKED, [value(1, "URL", url + "recalled")], now_ms=now_ms()))
        commit(txs.revoke(REVOKED, "recalled batch", now_ms=now_ms()))
        commit(txs.register(OWNED_BY_ALICE, [value(1, "URL", url + "pump")], now_ms=now_ms()))
        commit(txs.transfer(OWNED_BY_ALICE, alice_bid, now_ms=now_ms()))
        commit(
            txs.register_batch(
                PREFIX,
                [(name.split("/", 1)[1], [value(1, "URL", url + name)]) for name in PAGED],
                now_ms=now_ms(),
            )
        )
        cluster.wait_in_step(["node1", "node2"])
        return ExplorerNet(
            cluster, http_base(cluster, "node2"), root_bid, alice_bid, tx_id(registered).hex()
        )
    except BaseException:
        cluster.stop_all()
        raise
