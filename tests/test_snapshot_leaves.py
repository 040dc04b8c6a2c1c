"""The records' leaves of a state sync, derived partly in a worker process
(node/snapshot_leaves.py): the worker's share gives exactly what this process derives, a
worker that cannot run leaves its share to this process, an undecodable record is named
wherever it falls, and a check that fails alongside stops the worker."""

from __future__ import annotations

import logging
import sys

import pytest

from sparkchain.identifiers.hashing import HashAlgorithm, hash_function
from sparkchain.identifiers.tags import SMT_LEAF, TREE_RECORD_NAMESPACE
from sparkchain.ledger import smt
from sparkchain.ledger.records import encode_record
from sparkchain.node import schema, snapshot_leaves
from sparkchain.node.snapshot_leaves import (
    DerivedLeaves,
    UndecodableRecord,
    derive_leaves,
    derive_record_leaves,
)
from sparkchain.proto import types_pb2 as pb

RECORDS = 400


def _records(count: int = RECORDS) -> tuple[list[bytes], list[bytes]]:
    keys = [schema.record_key(f"88.1/item-{i:05d}") for i in range(count)]
    values = [
        encode_record(pb.Record(owner=f"bid:owner-{i % 3}", identifier=f"88.1/item-{i:05d}"))
        for i in range(count)
    ]
    return keys, values


def _in_process(keys: list[bytes], values: list[bytes], algorithm: HashAlgorithm) -> DerivedLeaves:
    derived, _ = derive_record_leaves(
        keys, values, algorithm, lambda: None, min_records=len(keys) + 1
    )
    return derived


def _no_fallback(caplog: pytest.LogCaptureFixture) -> None:
    """The worker did its share: a fallback here would give the same leaves (the tests
    using it set caplog to capture spark.state_sync's warnings first)."""
    assert "state_sync_worker_failed" not in [r.getMessage() for r in caplog.records]


def _fields(derived: DerivedLeaves) -> tuple[list[bytes], ...]:
    return derived.tree_keys, derived.leaves, derived.leaf_hashes, derived.owner_keys


@pytest.fixture(autouse=True)
def _two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_leaves, "_cores", lambda: 2)


@pytest.mark.parametrize("algorithm", list(HashAlgorithm), ids=lambda a: a.value)
def test_the_workers_share_is_what_this_process_derives(
    algorithm: HashAlgorithm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "spark.state_sync")
    keys, values = _records()
    ran = []

    def alongside() -> str:
        ran.append(1)
        return "the tree"

    shared, beside = derive_record_leaves(keys, values, algorithm, alongside, min_records=1)
    _no_fallback(caplog)
    assert ran == [1] and beside == "the tree"
    assert _fields(shared) == _fields(_in_process(keys, values, algorithm))
    # and each piece is what the tree and the owner index make of the record
    hash_fn = hash_function(algorithm)
    at = RECORDS - 1  # the last record is derived here, the first in the worker
    for i in (0, at):
        tree_key = smt.record_tree_key(f"88.1/item-{i:05d}", hash_fn)
        leaf = SMT_LEAF + tree_key + smt.value_hash(values[i], hash_fn)
        assert shared.tree_keys[i] == tree_key
        assert (shared.leaves[i], shared.leaf_hashes[i]) == (leaf, hash_fn(leaf))
        owner = f"bid:owner-{i % 3}"
        assert shared.owner_keys[i] == schema.owner_key(
            owner, schema.OWNED_RECORD, f"88.1/item-{i:05d}"
        )
    assert derive_leaves(TREE_RECORD_NAMESPACE, keys, values, algorithm).owner_keys == []


@pytest.mark.parametrize("executable", ["/bin/false", "/nonexistent/python"])
def test_a_worker_that_cannot_run_leaves_its_share_here(
    executable: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    keys, values = _records()
    monkeypatch.setattr(sys, "executable", executable)
    with caplog.at_level(logging.WARNING, "spark.state_sync"):
        shared, _ = derive_record_leaves(
            keys, values, HashAlgorithm.SHA256, lambda: None, min_records=1
        )
    assert [r.getMessage() for r in caplog.records] == ["state_sync_worker_failed"]
    monkeypatch.undo()
    assert _fields(shared) == _fields(_in_process(keys, values, HashAlgorithm.SHA256))


@pytest.mark.parametrize("bad_at", [0, RECORDS - 1], ids=["in the worker", "here"])
def test_an_undecodable_record_is_named_wherever_it_is_derived(
    bad_at: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "spark.state_sync")
    keys, values = _records()
    values[bad_at] = b"\xff\xff\xff"  # not a Record
    with pytest.raises(UndecodableRecord) as raised:
        derive_record_leaves(keys, values, HashAlgorithm.SHA256, lambda: None, min_records=1)
    assert raised.value.args == (keys[bad_at],)
    _no_fallback(caplog)


def test_a_check_that_fails_alongside_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    keys, values = _records()
    started: list[snapshot_leaves._Worker] = []
    real = snapshot_leaves._Worker

    def recorded(*args: object) -> snapshot_leaves._Worker:
        worker = real(*args)  # type: ignore[arg-type]
        started.append(worker)
        return worker

    monkeypatch.setattr(snapshot_leaves, "_Worker", recorded)

    def refused() -> None:
        raise ValueError("the tree does not check out")

    with pytest.raises(ValueError, match="does not check out"):
        derive_record_leaves(keys, values, HashAlgorithm.SHA256, refused, min_records=1)
    [worker] = started
    assert worker._process is not None and worker._process.returncode is not None
