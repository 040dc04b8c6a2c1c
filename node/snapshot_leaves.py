"""What a state sync derives from each record of a snapshot, on both cores.

A snapshot (format 2) carries the records, not the tree's leaves: the joiner builds each
leaf, H(leaf tag, tree key, value hash), from the record, and the owner index entry from
its owner (node/snapshot_restore.py). That is three hashes and a protobuf decoding per
record, most of a state sync's work at 200,000 identifiers and the same for every record,
so a worker process (`python -m sparkchain.node.snapshot_leaves`) takes a share of the
records while this process checks the tree's internal nodes (ledger/smt_walk.py) and
derives the rest.

The worker is a plain child process whose standard input and output are temporary files,
not a multiprocessing pool: a pool's "spawn" child imports the parent's main module (the whole
CLI and gRPC for a node), which cost more than the work it takes, and "fork" is unsafe in
a process with gRPC's threads. What the worker sends back is trusted no more than the
records it was given: every leaf is matched against the checked tree, as when this
process derives it, and a worker that fails leaves its share to this process.
"""

from __future__ import annotations

import logging
import operator
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Final, TypeVar, cast

from google.protobuf.message import DecodeError

from sparkchain.identifiers.hashing import HashAlgorithm, hash_function
from sparkchain.identifiers.tags import TREE_RECORD_NAMESPACE
from sparkchain.ledger import smt
from sparkchain.ledger.smt_walk import leaf_nodes
from sparkchain.node import schema
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.state_sync")

_T = TypeVar("_T")

# below this many records a worker costs more (its start, passing the records) than it
# saves (at 200,000 it saved 0.2 s of 3.4 before the entries were written during the
# check: bench/statesync_bench.py)
WORKER_MIN_RECORDS: Final = 20_000
# the records' share the worker derives while this process checks the tree and derives
# the rest (about balanced at 200,000 identifiers)
WORKER_SHARE: Final = 0.6


class UndecodableRecord(Exception):
    """The value of a record's key (the exception's argument) is not a record: the
    snapshot cannot be the certified state."""


@dataclass(frozen=True, slots=True, eq=False)
class DerivedLeaves:
    """Beside each of some state entries, in their order: its tree key, its encoded leaf
    node and that node's hash; for records also the owner index key."""

    tree_keys: list[bytes]
    leaves: list[bytes]
    leaf_hashes: list[bytes]
    owner_keys: list[bytes]  # empty but for records

    def __add__(self, other: DerivedLeaves) -> DerivedLeaves:
        return DerivedLeaves(
            self.tree_keys + other.tree_keys,
            self.leaves + other.leaves,
            self.leaf_hashes + other.leaf_hashes,
            self.owner_keys + other.owner_keys,
        )


def derive_leaves(
    tree_namespace: bytes, keys: list[bytes], values: list[bytes], algorithm: HashAlgorithm
) -> DerivedLeaves:
    """The leaves of `keys` (storage keys, namespace byte first) with `values` in the tree
    namespace `tree_namespace`, hashed with `algorithm` (the chain's). All in C, without
    a bytecode loop per key."""
    hash_fn = hash_function(algorithm)
    tree_keys = list(smt.tree_keys(tree_namespace, map(schema.WITHOUT_NAMESPACE, keys), hash_fn))
    leaves = leaf_nodes(tree_keys, map(hash_fn, values))  # smt.value_hash of each
    return DerivedLeaves(tree_keys, leaves, list(map(hash_fn, leaves)), [])


def derive_record_leaves(
    keys: list[bytes],
    values: list[bytes],
    algorithm: HashAlgorithm,
    alongside: Callable[[], _T],
    *,
    min_records: int | None = None,
) -> tuple[DerivedLeaves, _T]:
    """`derive_leaves` of the records `keys` and `values`, with the owner index key of
    each, a share of them in a worker process (with `min_records` of them or more,
    WORKER_MIN_RECORDS unless given, and two cores) while this process runs `alongside`
    (the tree's check), with what `alongside` returned; raises what `alongside` raises,
    and UndecodableRecord naming the first value that is not a record."""
    enough = len(keys) >= (WORKER_MIN_RECORDS if min_records is None else min_records)
    share = int(len(keys) * WORKER_SHARE) if enough and _cores() >= 2 else 0
    if not share:
        beside = alongside()
        return _derive_records(keys, values, algorithm), beside
    worker = _Worker(keys[:share], values[:share], algorithm)
    try:
        beside = alongside()
        local = _derive_records(keys[share:], values[share:], algorithm)
    except UndecodableRecord:
        worker.result()  # raises for an undecodable record of its share: the first
        raise
    except BaseException:
        worker.stop()
        raise
    return worker.result() + local, beside


def _derive_records(
    keys: list[bytes], values: list[bytes], algorithm: HashAlgorithm
) -> DerivedLeaves:
    derived = derive_leaves(TREE_RECORD_NAMESPACE, keys, values, algorithm)
    heads = _owner_heads(keys, values)
    owner_keys = list(map(bytes.__add__, heads, map(schema.WITHOUT_NAMESPACE, keys)))
    return DerivedLeaves(derived.tree_keys, derived.leaves, derived.leaf_hashes, owner_keys)


def _owner_heads(keys: list[bytes], values: list[bytes]) -> list[bytes]:
    """`schema.owner_key_head` of each record's owner, made once per owner (a chain's
    records mostly share a few)."""
    heads = _OwnerHeads(schema.OWNED_RECORD)
    try:
        owners = list(map(operator.attrgetter("owner"), map(pb.Record.FromString, values)))
    except DecodeError:
        raise UndecodableRecord(_first_undecodable(keys, values)) from None
    return list(map(heads.__getitem__, owners))


def _first_undecodable(keys: list[bytes], values: list[bytes]) -> bytes:
    for key, value in zip(keys, values, strict=True):
        try:
            pb.Record.FromString(value)
        except DecodeError:
            return key
    raise AssertionError("a record failed to decode, then decoded")


class _OwnerHeads(dict[str, bytes]):
    """Owner -> `schema.owner_key_head(owner, kind)`, made on first use."""

    def __init__(self, kind: bytes) -> None:
        super().__init__()
        self.kind = kind

    def __missing__(self, owner: str) -> bytes:
        head = self[owner] = schema.owner_key_head(owner, self.kind)
        return head


def _cores() -> int:
    return len(os.sched_getaffinity(0))


class _Worker:
    """`_derive_records` of some records in a child process, started at once. The child
    reads (algorithm, keys, values) pickled from its standard input and writes what it
    derived to its standard output (`_worker_main`); both are unnamed temporary files, not
    pipes: a thread feeding a pipe 64 KiB at a time would wait for the GIL after each
    write while this thread checks the tree (measured: the child got its records up to
    a second late)."""

    def __init__(self, keys: list[bytes], values: list[bytes], algorithm: HashAlgorithm) -> None:
        self._keys, self._values, self._algorithm = keys, values, algorithm
        self._process: subprocess.Popen[bytes] | None = None
        self._not_started: OSError | None = None
        self._answer_file: IO[bytes] | None = None  # open until result() or stop()
        try:
            self._answer_file = tempfile.TemporaryFile(prefix="spark-state-sync-")  # noqa: SIM115
            with tempfile.TemporaryFile(prefix="spark-state-sync-") as given:
                pickle.dump((algorithm.value, keys, values), given, pickle.HIGHEST_PROTOCOL)
                given.seek(0)
                self._process = subprocess.Popen(
                    [sys.executable, "-m", __name__], stdin=given, stdout=self._answer_file
                )
        except OSError as error:  # result() says so and derives here
            self._not_started = error

    def result(self) -> DerivedLeaves:
        """What the child derived; derived here instead when it failed."""
        try:
            return self._derived(self._answer())
        except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
            log.warning("state_sync_worker_failed", extra={"error": repr(error)})
            return _derive_records(self._keys, self._values, self._algorithm)
        finally:
            self._close()

    def _derived(self, answer: tuple[object, ...]) -> DerivedLeaves:
        if answer[0] == "undecodable" and isinstance(answer[1], bytes):
            raise UndecodableRecord(answer[1])
        lists = answer[1:]
        if not all(isinstance(given, list) and len(given) == len(self._keys) for given in lists):
            raise ValueError("the worker's answer is not one list per kind, one item per record")
        return DerivedLeaves(*cast(tuple[list[bytes], ...], lists))

    def _answer(self) -> tuple[object, ...]:
        if self._process is None or self._answer_file is None:
            raise OSError(f"the worker did not start: {self._not_started}")
        code = self._process.wait()
        if code != 0:
            raise OSError(f"the worker exited with {code}")
        self._answer_file.seek(0)
        answer = pickle.load(self._answer_file)  # our own child's, never a peer's bytes
        if not (
            isinstance(answer, tuple)
            and answer
            and len(answer) == (2 if answer[0] == "undecodable" else 5)
        ):
            raise ValueError("the worker's answer is not one")
        return answer

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        self._close()

    def _close(self) -> None:
        if self._answer_file is not None:
            self._answer_file.close()


def _worker_main() -> None:
    algorithm, keys, values = pickle.load(sys.stdin.buffer)
    try:
        derived = _derive_records(keys, values, HashAlgorithm(algorithm))
    except UndecodableRecord as error:
        answer: tuple[object, ...] = ("undecodable", error.args[0])
    else:
        answer = (
            "leaves",
            derived.tree_keys,
            derived.leaves,
            derived.leaf_hashes,
            derived.owner_keys,
        )
    pickle.dump(answer, sys.stdout.buffer, pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    _worker_main()
