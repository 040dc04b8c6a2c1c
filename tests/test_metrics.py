"""node/metrics.py in this process: state gauges are read at scrape time, each node's
registry is its own, and the bounds in the mempool, the commit bus and the peer links count
their hits.
The real-node view (a testnet's /metrics moving) is tests/test_gateway_metrics.py."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.events import CommitBus
from sparkchain.node.mempool import MempoolLimits
from sparkchain.node.metrics import NodeMetrics, NodeState
from sparkchain.node.peers import PeerLink
from sparkchain.proto import peer_pb2
from tests.helpers.ledger import LedgerChain
from tests.test_mempool import make_mempool, registrations


class State:
    def __init__(self) -> None:
        self.height = 3
        self.peer_height = 5
        self.position: tuple[int, int] | None = (0, 1)
        self.links = [(True, False), (False, False), (True, True)]

    def node_state(self) -> NodeState:
        return NodeState(
            height=lambda: self.height,
            consensus=lambda: self.position,
            mempool=lambda: (2, 300),
            peers=lambda: self.links,
            best_peer_height=lambda: self.peer_height,
        )


def values(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_state_gauges_are_read_at_each_scrape() -> None:
    state = State()
    metrics = NodeMetrics()
    metrics.watch(state.node_state())
    first = values(metrics)
    assert first[("spark_height", ())] == 3
    assert first[("spark_sync_lag_blocks", ())] == 2
    assert first[("spark_consensus_step", ())] == 1
    assert first[("spark_mempool_bytes", ())] == 300
    assert first[("spark_peers_connected", (("kind", "validator"),))] == 1
    assert first[("spark_peers_connected", (("kind", "observer"),))] == 1
    state.height, state.position = 6, None  # ahead of every peer; consensus not running
    second = values(metrics)
    assert second[("spark_height", ())] == 6
    assert second[("spark_sync_lag_blocks", ())] == 0
    assert ("spark_consensus_round", ()) not in second


def test_each_node_has_its_own_registry() -> None:
    one, two = NodeMetrics(), NodeMetrics()
    one.committed(4)
    assert values(one)[("spark_txs_committed_total", ())] == 4
    assert values(two)[("spark_txs_committed_total", ())] == 0
    assert ("process_cpu_seconds_total", ()) in values(two)


def test_watch_caps_count_their_hits() -> None:
    bus = CommitBus(max_streams=3, max_streams_per_client=1)
    hits: list[str] = []
    bus.on_limit_hit = hits.append
    bus.subscribe(client="a")
    with pytest.raises(SparkError):
        bus.subscribe(client="a")
    bus.subscribe(client="b")
    bus.subscribe(client="c")
    with pytest.raises(SparkError):
        bus.subscribe(client="d")
    assert hits == ["MAX_WATCH_STREAMS_PER_CLIENT", "MAX_WATCH_STREAMS"]


async def test_a_full_mempool_counts_each_refusal(ledger_chain: LedgerChain) -> None:
    mempool = make_mempool(
        ledger_chain, limits=MempoolLimits(max_txs=2, max_bytes=1 << 20, signer_share_percent=100)
    )
    metrics = NodeMetrics()
    mempool.on_limit_hit = metrics.limit_hit
    txs = registrations(ledger_chain, 4)
    for tx in txs[:2]:
        await mempool.add(tx)
    for tx in txs[2:]:
        with pytest.raises(SparkError) as caught:
            await mempool.add(tx)
        assert caught.value.code is ErrorCode.MEMPOOL_FULL
    assert values(metrics)[("spark_limit_hits_total", (("limit", "mempool.max_txs"),))] == 2


def test_a_full_peer_queue_counts_its_hits() -> None:
    hits: list[str] = []
    link = PeerLink(
        peer_pb2.Handshake(public_key=b"k" * 32),
        outbound=True,
        address="127.0.0.1:1",
        local_key=b"l" * 32,
        queue_limit=1,
        on_limit_hit=hits.append,
    )
    gossip = peer_pb2.PeerMessage(txs=peer_pb2.TxBatch())
    for _ in range(3):
        link.send(gossip)
    assert link.dropped == 2 and hits == ["PEER_OUTBOUND_QUEUE_MESSAGES"] * 2
    link.send(peer_pb2.PeerMessage(status=peer_pb2.PeerStatus(height=1)))
    assert link.closed.is_set() and len(hits) == 3  # a consensus message closes the link
