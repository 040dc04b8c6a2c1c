"""The chaos checker (tests/chaos/checker.py) catches each kind of violation it promises,
on small hand-made histories, and passes an honest one. The fault proxy cuts and heals a
link. The schedules hold every kind of fault and repeat from their seed."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.checker import BlockView, NodeView, RecordView, TimeBounds, check
from tests.chaos.history import History, Op, load_ops
from tests.chaos.nemesis import KINDS, PAUSE_MIN_S, make_schedule
from tests.chaos.proxy import ProxyNet

ROOT = "did:bid:efROOT"
BOUNDS = TimeBounds(earliest_ms=1000, latest_ms=10_000)


def write(op_id: int, f: str, identifier: str, outcome: str, height: int = 0, **kw: str) -> Op:
    return Op(
        op_id,
        0,
        "node1",
        f,
        identifier,
        tx_id=f"{op_id:04x}",
        outcome=outcome,
        height=height,
        invoked_s=float(op_id),
        completed_s=op_id + 0.5,
        **kw,  # type: ignore[arg-type]
    )


def read(
    op_id: int, node: str, identifier: str, height: int, payload: str, owner: str = ROOT
) -> Op:
    return Op(
        op_id,
        1,
        node,
        "resolve",
        identifier,
        outcome="ok",
        height=height,
        found=True,
        seen_payload=payload,
        seen_owner=owner,
        invoked_s=float(op_id),
        completed_s=op_id + 0.5,
    )


def honest() -> tuple[list[Op], list[NodeView]]:
    ops = [
        write(0, "register", "88/A", "ok", 1, payload="a0"),
        write(1, "update", "88/A", "ok", 2, payload="a1"),
        write(2, "transfer", "88/A", "info", owner="did:bid:efBOB"),  # unknown: landed
        write(3, "register", "88/B", "fail", code="EXISTS", payload="b0"),
        write(4, "register", "88/C", "info", payload="c0"),  # unknown: did not land
        read(5, "node1", "88/A", 2, "a1"),
        read(6, "node2", "88/A", 3, "a1", "did:bid:efBOB"),
    ]
    blocks = {
        1: BlockView("h1", "r1", 2000),
        2: BlockView("h2", "r2", 2500),
        3: BlockView("h3", "r3", 2600),
    }
    views = [
        NodeView(
            name,
            3,
            dict(blocks),
            {"0000": 1, "0001": 2, "0002": 3, "0003": None, "0004": None},
            {"88/A": RecordView("a1", "did:bid:efBOB"), "88/B": None, "88/C": None},
        )
        for name in ("node1", "node2")
    ]
    return ops, views


def test_an_honest_history_has_no_violations() -> None:
    ops, views = honest()
    assert check(ops, views, ROOT, BOUNDS) == []


def test_a_lost_acknowledged_write_is_a_violation() -> None:
    ops, views = honest()
    views[1].txs["0001"] = None
    views[1].records["88/A"] = RecordView("a0", "did:bid:efBOB")
    violations = check(ops, views, ROOT, BOUNDS)
    assert any("op 1 (update 88/A) acknowledged at height 2" in v for v in violations)
    assert any(v.startswith("node2: 88/A is RecordView(payload='a0'") for v in violations)


def test_a_refused_write_that_landed_is_a_violation() -> None:
    ops, views = honest()
    for view in views:
        view.txs["0003"] = 3
    assert check(ops, views, ROOT, BOUNDS) == [
        "op 3 (register 88/B) was refused (EXISTS) but its tx is at node1: height 3, "
        "node2: height 3"
    ]


def test_an_unknown_write_on_some_nodes_only_is_a_violation() -> None:
    ops, views = honest()
    views[0].txs["0004"] = 3
    violations = check(ops, views, ROOT, BOUNDS)
    assert any(
        "op 4 (register 88/C), outcome unknown, is only partly present" in v for v in violations
    )


def test_a_read_of_a_value_nobody_wrote_is_a_violation() -> None:
    ops, views = honest()
    ops.append(read(7, "node1", "88/A", 3, "forged"))
    ops.append(read(8, "node1", "88/A", 3, "a1", "did:bid:efMALLORY"))
    violations = check(ops, views, ROOT, BOUNDS)
    assert "op 7: node1 returned payload 'forged' of 88/A, which no write produced" in violations
    assert any(v.startswith("op 8: node1 returned owner did:bid:efMALLORY") for v in violations)


def test_a_read_of_a_value_from_above_its_height_is_a_violation() -> None:
    ops, views = honest()
    ops.append(read(7, "node2", "88/A", 1, "a1"))
    violations = check(ops, views, ROOT, BOUNDS)
    assert any("at height 1 returned payload 'a1'" in v for v in violations)


def test_a_node_going_back_in_height_is_a_violation() -> None:
    ops, views = honest()
    ops.append(Op(9, 2, "node2", "status", outcome="ok", height=2, invoked_s=10, completed_s=11))
    violations = check(ops, views, ROOT, BOUNDS)
    assert violations == ["node2 went back in height: op 9 saw 2 after op 6 had seen 3"]


def test_overlapping_reads_may_see_heights_in_either_order() -> None:
    ops, views = honest()
    ops.append(Op(9, 2, "node2", "status", outcome="ok", height=2, invoked_s=6.2, completed_s=7))
    assert check(ops, views, ROOT, BOUNDS) == []


def test_two_blocks_at_one_height_and_bad_times_are_violations() -> None:
    ops, views = honest()
    views[1].blocks[2] = BlockView("forked", "r2", 2500)
    views[0].blocks[3] = views[1].blocks[3] = BlockView("h3", "r3", 2500)
    violations = check(ops, views, ROOT, BOUNDS)
    assert "height 2: nodes hold different blocks: node1 h2, node2 forked" in violations
    assert "height 3: block time 2500 is not after the previous 2500" in violations
    views[0].blocks[3] = views[1].blocks[3] = BlockView("h3", "r3", 12_000)
    assert "height 3: block time 12000 is 2000 ms beyond real time plus the largest clock skew" in (
        check(ops, views, ROOT, BOUNDS)
    )


def test_different_state_roots_are_a_violation() -> None:
    ops, views = honest()
    views[1].blocks[1] = BlockView("h1", "other", 2000)
    assert check(ops, views, ROOT, BOUNDS) == ["height 1: nodes hold different state roots"]


def test_the_history_file_holds_every_invocation_and_completion(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history = History(path)
    op = history.invoke(Op(0, 0, "node1", "register", "88/A", payload="a0"))
    history.complete(op, "ok", height=4)
    history.invoke(Op(0, 1, "node2", "status"))
    history.close()
    assert len(path.read_text().splitlines()) == 4  # the unfinished op is closed as unknown
    loaded = load_ops(path)
    assert [(o.f, o.outcome, o.height) for o in loaded] == [
        ("register", "ok", 4),
        ("status", "info", 0),
    ]


def test_a_schedule_has_every_kind_and_repeats_from_its_seed() -> None:
    validators, observers = ["node1", "node2", "node3", "node4"], ["node5"]
    for seed in range(5):
        schedule = make_schedule(seed, 300, validators, observers, "node2")
        assert {fault.kind for fault in schedule} == set(KINDS)
        assert schedule[-1].at_s + schedule[-1].duration_s <= 300
        assert all(f.at_s + f.duration_s < g.at_s for f, g in itertools.pairwise(schedule))
        assert all(f.duration_s >= PAUSE_MIN_S for f in schedule if f.kind == "pause")
        assert all(f.targets == ["node2"] for f in schedule if f.kind == "disk")
        again = make_schedule(seed, 300, validators, observers, "node2")
        assert [f.describe() for f in again] == [f.describe() for f in schedule]
    short = make_schedule(7, 300, validators, observers, "node2", short=True)
    assert sorted(f.kind for f in short) == sorted(set(KINDS) - {"kill"})  # skew kills
    no_disk = make_schedule(7, 300, validators, observers, None, short=True)
    assert "disk" not in {f.kind for f in no_disk}


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                while data := connection.recv(4096):
                    connection.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _echo(address: str, message: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as connection:
        connection.sendall(message)
        return connection.recv(4096)


def test_the_proxy_forwards_cuts_a_partition_and_heals(echo_server: str) -> None:
    proxies = ProxyNet(seed=1)
    try:
        address = proxies.add_link("node1", "node2", echo_server)
        assert _echo(address, b"hello") == b"hello"
        proxies.partition([["node1"], ["node2"]])
        with pytest.raises(TimeoutError):  # a black hole: accepted, never answered
            _echo(address, b"lost")
        proxies.partition([["node1", "node2"]])  # same side: nothing cut
        assert _echo(address, b"same side") == b"same side"
        proxies.perturb(delay_ms=20, jitter_ms=10, loss=0.0)
        assert _echo(address, b"slow") == b"slow"
        proxies.heal()
        assert _echo(address, b"healed") == b"healed"
        assert proxies.links[("node1", "node2")].forwarded_bytes >= 2 * len(
            b"hellosame sideslowhealed"
        )
    finally:
        proxies.close()
