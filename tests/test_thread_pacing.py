"""Background threads pause often (node/thread_pacing.py), and a snapshot is written so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.identifiers.hashing import sha256
from sparkchain.node import schema, snapshots
from sparkchain.node.snapshots import PacedView, SnapshotStore, SnapshotTaker, snapshot_entries
from sparkchain.node.thread_pacing import ThreadPacer
from tests.helpers.chain import make_test_genesis
from tests.helpers.ledger import LedgerChain


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_sleeps_after_each_stretch_of_work() -> None:
    clock = FakeClock()
    pacer = ThreadPacer(work_s=0.001, pause_s=0.002, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        clock.now += 0.0004  # a unit of work
        pacer.pace()
    # 4 ms of work: a pause after each full millisecond of it
    assert clock.slept == [0.002] * 3
    assert pacer.pauses == 3


def test_a_pacer_that_has_not_run_long_does_not_sleep() -> None:
    clock = FakeClock()
    pacer = ThreadPacer(work_s=0.001, pause_s=0.002, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        pacer.pace()  # no time passes
    assert clock.slept == []


def test_a_paced_view_paces_every_read() -> None:
    calls: list[str] = []

    class Pacer(ThreadPacer):
        def pace(self) -> None:
            calls.append("pace")

    class View:
        def get(self, key: bytes) -> bytes | None:
            calls.append("get")
            return key + b"!"

        def iterator(self, *, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
            for i in range(3):
                calls.append("item")
                yield prefix + bytes([i]), b""

    view = PacedView(View(), Pacer())
    assert view.get(b"k") == b"k!"
    assert [k for k, _ in view.iterator(prefix=b"p")] == [b"p\x00", b"p\x01", b"p\x02"]
    assert calls == ["pace", "get"] + ["item", "pace"] * 3


@pytest.mark.parametrize(("work_s", "pause_s"), [(0, 0.001), (0.001, 0), (-1, 1)])
def test_a_pacer_refuses_a_period_that_is_not_positive(work_s: float, pause_s: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ThreadPacer(work_s=work_s, pause_s=pause_s)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LedgerChain]:
    built = LedgerChain(tmp_path / "source", make_test_genesis())
    acme = built.signer("acme")
    for height in range(1, 4):
        now = built.next_time_ms
        built.commit([acme.register(f"88/p{height}-{i}", now_ms=now) for i in range(40)])
    yield built
    built.close()


def test_tree_nodes_sorted_in_parts_are_in_key_order(
    chain: LedgerChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = chain.ledger
    whole = list(snapshot_entries(ledger.db, ledger.state_root))
    monkeypatch.setattr(snapshots, "SNAPSHOT_SORT_PART_NODES", 7)
    paces: list[None] = []
    in_parts = list(snapshot_entries(ledger.db, ledger.state_root, pace=lambda: paces.append(None)))
    assert in_parts == whole
    tree_keys = [k for k, _ in in_parts if k.startswith(schema.TREE_NODE)]
    assert len(tree_keys) > 7  # several parts were merged
    assert len(paces) >= len(tree_keys) // 7  # one pause chance per part


def test_the_snapshot_thread_pauses_while_it_writes(
    chain: LedgerChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pacers: list[ThreadPacer] = []

    class EagerPacer(ThreadPacer):
        """Pauses after every read: as if each took longer than BACKGROUND_WORK_S."""

        def __init__(self) -> None:
            super().__init__(work_s=1e-12, pause_s=1e-6)
            pacers.append(self)

    monkeypatch.setattr(snapshots, "ThreadPacer", EagerPacer)
    ledger = chain.ledger
    store = SnapshotStore(tmp_path / "snapshots", 2, sha256)
    taker = SnapshotTaker(ledger.db, store, interval=ledger.height)

    async def take() -> None:
        taker.block_committed(ledger.height, ledger.last_block_hash, ledger.state_root)
        assert taker.taken is not None
        await taker.taken

    asyncio.run(take())
    taker.close()
    assert [m.height for m in store.manifests()] == [ledger.height]
    assert len(pacers) == 1
    entries = list(snapshot_entries(ledger.db, ledger.state_root))
    assert pacers[0].pauses >= len(entries)  # every read of the snapshot paused
