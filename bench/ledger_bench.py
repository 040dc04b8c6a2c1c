"""Ledger benchmark (issue 3): committing identifiers, resolving them, proofs, disk and RSS.

Measured in one run on this machine:
- baselines: raw LevelDB WriteBatch(1000, sync=True) puts/s (100-byte values) and SHA-256
  of 64 bytes per second (what a tree node hash costs), each figure's ratio to them;
- identifiers committed/s through build (execute + tree update) and a synced commit, with
  signature checks excluded (txs are signed before the clock starts, the ledger is opened
  with verify_signatures=False), for blocks of 1000 single Register txs and blocks of one
  RegisterBatch of 1000, at 10k and at 1M existing identifiers (quick: 10k and 100k);
- resolves/s (plain and with proof) of random existing identifiers, state proof
  verifications/s (smt.verify_proof) and full client checks/s (node/proof.py, which adds
  the 3 certificate signatures), proof sizes;
- bytes on disk per identifier and the process RSS at the largest size.

Filling a ledger to 1M identifiers takes a few minutes, so filled ledgers are cached in
$SPARK_BENCH_CACHE (default /tmp/sparkchain-bench), keyed by a hash of the code that
decides their layout; each measurement runs on a copy.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import plyvel

from bench.report import Goal, print_table, rate, ratio
from sparkchain.consensus.messages import VoteType
from sparkchain.consensus.signbytes import chain_prefix, vote_sign_bytes
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.tags import VOTE_TAG
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.ledger import smt
from sparkchain.ledger.genesis import Genesis, make_genesis
from sparkchain.ledger.proof import verify_resolution
from sparkchain.node.ledger import BuiltBlock, Ledger
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb

PREFIX = "88.608.24161301"
BLOCK_IDS = 1000
MEASURED_BLOCKS = 10
TIMED_PARTS = 5  # reads are timed in parts, and the median part is reported
WARM_UP_BLOCKS = 3
RESOLVE_SAMPLE = 20_000
PROOF_SAMPLE = 5_000
BLOCK_INTERVAL_MS = 1000
# issue 15's goals at the largest size, per CPU-second of the calling thread (the
# machine is shared: wall time measures the neighbours too)
GOAL_BATCH_PER_CPU_S = 50_000
GOAL_SINGLE_PER_CPU_S = 20_000
GOAL_RESOLVE_PER_S = 80_000
GOAL_PROOF_PER_S = 20_000
GOAL_RESOLVE_SLOWDOWN = 1.5
GOAL_RSS_MB = 400
GOAL_PEAK_RSS_MB = 600
CACHE_DIR = Path(os.environ.get("SPARK_BENCH_CACHE", "/tmp/sparkchain-bench"))
# A cached ledger is reused while the storage layout and the tree's node encoding stay the
# same; bump BENCH_DATA_VERSION when the identifiers or values filled in change.
BENCH_DATA_VERSION = "1"
_LAYOUT_CODE = ("node/schema.py", "ledger/smt.py", "ledger/smt_nodes.py")


T = TypeVar("T")


def _key(name: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(b"bench key " + name.encode()).digest())


VALIDATORS = [_key(f"validator{i}") for i in range(1, 5)]
OWNER = _key("owner")


def bench_genesis() -> Genesis:
    return make_genesis(
        "sparkchain-bench",
        1_764_000_000_000,
        [(f"node{i}", k.public_key) for i, k in enumerate(VALIDATORS, start=1)],
        [bid_from_public_key(OWNER.public_key)],
        [(PREFIX, bid_from_public_key(OWNER.public_key))],
    )


def _certificate(genesis: Genesis, height: int, block_hash: bytes) -> pb.CommitCertificate:
    sign_bytes = vote_sign_bytes(
        chain_prefix(genesis.chain_id), VoteType.PRECOMMIT, height, 0, block_hash
    )
    cert = pb.CommitCertificate(height=height, round=0, block_hash=block_hash)
    for validator in VALIDATORS[:3]:
        cert.signatures.add(
            validator=validator.public_key, signature=validator.sign(VOTE_TAG, sign_bytes)
        )
    return cert


def identifier(number: int) -> str:
    """Serial-numbered product identifiers, as a manufacturer registers them."""
    return f"{PREFIX}/GTIN-06901234567892-SN{number:010d}"


def _values(number: int) -> list[pb.Value]:
    return [value(1, "URL", f"https://id.example.com/06901234567892/{number}")]


class Writer:
    """Commits blocks to a ledger with a valid certificate each, timing build and commit."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.builder = TxBuilder(ledger.chain_id, OWNER, random.Random(11))
        self.proposer = VALIDATORS[0].public_key

    def now_ms(self) -> int:
        return self.ledger.last_block_time_ms + BLOCK_INTERVAL_MS

    def batch_txs(self, first: int) -> list[pb.SignedTx]:
        items = [
            (identifier(n)[len(PREFIX) + 1 :], _values(n)) for n in range(first, first + BLOCK_IDS)
        ]
        return [self.builder.register_batch(PREFIX, items, now_ms=self.now_ms())]

    def single_txs(self, first: int) -> list[pb.SignedTx]:
        now = self.now_ms()
        return [
            self.builder.register(identifier(n), _values(n), now_ms=now)
            for n in range(first, first + BLOCK_IDS)
        ]

    def commit(self, txs: list[pb.SignedTx]) -> float:
        """Build and commit one block; seconds spent (tx signing excluded)."""
        started = time.perf_counter()
        built: BuiltBlock = self.ledger.build_block(txs, self.now_ms(), self.proposer)
        built_at = time.perf_counter()
        # signing the certificate is consensus's work, not the ledger's: not timed
        certificate = _certificate(self.ledger.genesis, built.pending.height, built.block_hash)
        commit_started = time.perf_counter()
        self.ledger.commit_block(built.pending, certificate)
        finished = time.perf_counter()
        if built.rejected:
            raise RuntimeError(f"bench block rejected txs: {built.rejected[0][1]}")
        return (built_at - started) + (finished - commit_started)


# ---- filled ledgers, cached between runs ----


def _code_fingerprint() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(BENCH_DATA_VERSION.encode())
    for name in _LAYOUT_CODE:
        path = root / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:16]


def filled_ledger(size: int, progress: Callable[[str], None]) -> Path:
    """A ledger directory holding `size` identifiers (built once, then cached)."""
    path = CACHE_DIR / f"ledger-{size}-{_code_fingerprint()}"
    if (path / "FILLED").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    for stale in CACHE_DIR.glob(f"ledger-{size}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    path.mkdir(parents=True)
    started = time.perf_counter()
    with Ledger.open(path / "db", bench_genesis(), verify_signatures=False) as ledger:
        writer = Writer(ledger)
        for first in range(0, size, BLOCK_IDS):
            writer.commit(writer.batch_txs(first))
            if first and first % 100_000 == 0:
                progress(f"filling {size:,}: {first:,} ({time.perf_counter() - started:.0f} s)")
        ledger.db.compact_range()
    (path / "FILLED").write_text(str(size))
    return path


def _working_copy(filled: Path, scratch: Path) -> Path:
    target = scratch / "db"
    shutil.copytree(filled / "db", target)
    return target


# ---- measurements ----


def raw_leveldb_puts_per_s(scratch: Path, batches: int) -> Rate:
    db = plyvel.DB(str(scratch / "raw"), create_if_missing=True)
    rng = random.Random(1)
    payload = rng.randbytes(100)
    keys = [b"r" + rng.randbytes(32) for _ in range(batches * BLOCK_IDS)]

    def write() -> None:
        for b in range(batches):
            with db.write_batch(sync=True) as batch:
                for key in keys[b * BLOCK_IDS : (b + 1) * BLOCK_IDS]:
                    batch.put(key, payload)

    wall, cpu = _timed(write)
    db.close()
    return Rate(batches * BLOCK_IDS / wall, batches * BLOCK_IDS / cpu)


def sha256_per_s(count: int = 200_000) -> Rate:
    """SHA-256 of 64-byte inputs (a tree node of two children hashes about that much)."""
    inputs = [bytes([i % 256]) * 64 for i in range(1000)]
    sha256 = hashlib.sha256

    def hash_all() -> None:
        for _ in range(count // len(inputs)):
            for data in inputs:
                sha256(data).digest()

    wall, cpu = _timed(hash_all)
    return Rate(count / wall, count / cpu)


@dataclass(frozen=True)
class Rate:
    """Operations per second of wall time, and per second of the calling thread's CPU time:
    when other processes share the machine, the second shows what the code costs (LevelDB's
    background compactions and the fsync wait are left out of it)."""

    wall: float
    cpu: float


def _timed(operation: Callable[[], object]) -> tuple[float, float]:
    """(wall, thread CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    operation()
    return time.perf_counter() - wall, time.thread_time() - cpu


def typical_rate(count_per_part: int, parts: list[Callable[[], object]]) -> Rate:
    """The rate of the median part: other processes sharing the machine slow some parts
    down; the median shows what one part costs, not who else was running."""
    walls, cpus = zip(*(_timed(part) for part in parts), strict=True)
    return Rate(count_per_part / statistics.median(walls), count_per_part / statistics.median(cpus))


def _chunks(items: list[T], count: int) -> list[list[T]]:
    size = max(1, len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class SizeFigures:
    size: int
    single: Rate = Rate(0, 0)
    batch: Rate = Rate(0, 0)
    resolve: Rate = Rate(0, 0)
    resolve_proof: Rate = Rate(0, 0)
    verify_state: Rate = Rate(0, 0)
    verify_full: Rate = Rate(0, 0)
    state_proof_bytes: float = 0.0
    resolve_proof_bytes: float = 0.0
    disk_bytes_per_id: float = 0.0
    memory: dict[str, float] | None = None


def _commit_rate(writer: Writer, make: Callable[[int], list[pb.SignedTx]], first: int) -> Rate:
    blocks = [make(first + i * BLOCK_IDS) for i in range(MEASURED_BLOCKS)]
    return typical_rate(BLOCK_IDS, [partial(writer.commit, txs) for txs in blocks])


def _each(operation: Callable[[T], object], items: list[T]) -> None:
    for item in items:
        operation(item)


def measure_size(size: int, scratch: Path, progress: Callable[[str], None]) -> SizeFigures:
    filled = filled_ledger(size, progress)
    db_path = _working_copy(filled, scratch)
    genesis = bench_genesis()
    figures = SizeFigures(size)
    rng = random.Random(size)
    with Ledger.open(db_path, genesis, verify_signatures=False) as ledger:
        writer = Writer(ledger)
        # a running node is warm: its tree cache and LevelDB's caches hold the hot parts
        next_free = size
        for _ in range(WARM_UP_BLOCKS):
            writer.commit(writer.batch_txs(next_free))
            next_free += BLOCK_IDS
        figures.single = _commit_rate(writer, writer.single_txs, next_free)
        next_free += MEASURED_BLOCKS * BLOCK_IDS
        figures.batch = _commit_rate(writer, writer.batch_txs, next_free)

        resolve = ledger.resolve
        for _ in range(RESOLVE_SAMPLE):
            resolve(identifier(rng.randrange(size)))
        sample = [identifier(rng.randrange(size)) for _ in range(RESOLVE_SAMPLE)]
        chunks = _chunks(sample, TIMED_PARTS)
        figures.resolve = typical_rate(len(chunks[0]), [partial(_each, resolve, c) for c in chunks])

        proof_sample = sample[:PROOF_SAMPLE]
        for name in sample[-PROOF_SAMPLE:]:
            ledger.resolve_with_proof(name)
        chunks = _chunks(proof_sample, TIMED_PARTS)
        figures.resolve_proof = typical_rate(
            len(chunks[0]), [partial(_each, ledger.resolve_with_proof, c) for c in chunks]
        )
        proofs = [ledger.resolve_with_proof(name)[1] for name in proof_sample]

        header = pb.BlockHeader.FromString(proofs[0].header)
        checks = [
            (smt.record_tree_key(name.upper()), p.record_bytes, p.state_proof)
            for name, p in zip(proof_sample, proofs, strict=True)
        ]

        def verify_state(check: tuple[bytes, bytes, bytes]) -> None:
            if not smt.verify_proof(header.state_root, *check):
                raise RuntimeError("a state proof did not verify")

        chunks = _chunks(checks, TIMED_PARTS)
        figures.verify_state = typical_rate(
            len(chunks[0]), [partial(_each, verify_state, c) for c in chunks]
        )

        def verify_client(item: tuple[str, api_pb2.ResolveProof]) -> None:
            verify_resolution(ledger.validators, genesis.chain_id, *item)

        chunks = _chunks(list(zip(proof_sample, proofs, strict=True))[:1000], TIMED_PARTS)
        figures.verify_full = typical_rate(
            len(chunks[0]), [partial(_each, verify_client, c) for c in chunks]
        )
        figures.state_proof_bytes = sum(len(p.state_proof) for p in proofs) / len(proofs)
        figures.resolve_proof_bytes = sum(p.ByteSize() for p in proofs) / len(proofs)
        figures.memory = _memory_mb()
    figures.disk_bytes_per_id = _disk_bytes(filled / "db") / size
    return figures


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _memory_mb() -> dict[str, float]:
    """VmRSS and its parts (RssAnon: heap, caches; RssFile: LevelDB's mmapped table
    pages, which the kernel can reclaim), and the peak (VmHWM), in MB."""
    memory = {"VmHWM": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                memory[name] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return memory


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---- the table ----


def run(quick: bool) -> None:
    sizes = (10_000, 100_000) if quick else (10_000, 1_000_000)

    def progress(message: str) -> None:
        print(f"  [ledger_bench] {message}", flush=True)

    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        scratch = Path(tmp)
        baseline = raw_leveldb_puts_per_s(scratch, 20 if quick else 100)
        hashes = sha256_per_s()
        results = []
        for size in sizes:
            progress(f"measuring at {size:,} identifiers")
            with tempfile.TemporaryDirectory(dir=scratch) as size_dir:
                results.append(measure_size(size, Path(size_dir), progress))
    _print(baseline, hashes, results, f"load average {load_before} before, {_load()} after")


def _print(baseline: Rate, hashes: Rate, results: list[SizeFigures], load: str) -> None:
    small, large = results[0], results[-1]
    rows: list[list[object]] = []
    goals: list[Goal] = []

    def add(label: str, figure: Rate | str, note: str = "", goal: Goal = ("-", None)) -> None:
        if isinstance(figure, Rate):
            rows.append([label, rate(figure.wall), rate(figure.cpu), note])
        else:
            rows.append([label, figure, "", note])
        goals.append(goal)

    add("raw LevelDB WriteBatch(1000, sync) puts (baseline)", baseline)
    add("SHA-256 of 64 bytes (baseline)", hashes, f"{1e6 / hashes.cpu:.2f} µs")
    for figures in results:
        at = f"at {figures.size:,}"
        for label, commit, goal_cpu in (
            ("single Register", figures.single, GOAL_SINGLE_PER_CPU_S),
            ("RegisterBatch", figures.batch, GOAL_BATCH_PER_CPU_S),
        ):
            goal: Goal = (
                (f"≥ {goal_cpu:,}/CPU-s", commit.cpu >= goal_cpu)
                if figures is large
                else ("-", None)
            )
            add(
                f"ids committed/s, {label}, {at}",
                commit,
                f"{1e6 / commit.cpu:.1f} µs CPU/id; {commit.cpu / baseline.cpu:.3f}x puts, "
                f"1 id = {hashes.cpu / commit.cpu:.0f} SHA-256",
                goal,
            )
    for figures in results:
        at = f"at {figures.size:,}"
        last = figures is large
        add(
            f"resolves/s, plain, {at}",
            figures.resolve,
            f"{1e6 / figures.resolve.cpu:.1f} µs CPU",
            (f"≥ {GOAL_RESOLVE_PER_S:,}/CPU-s", figures.resolve.cpu >= GOAL_RESOLVE_PER_S)
            if last
            else ("-", None),
        )
        add(
            f"resolves/s, with proof, {at}",
            figures.resolve_proof,
            f"{1e6 / figures.resolve_proof.cpu:.1f} µs CPU",
            (f"≥ {GOAL_PROOF_PER_S:,}/CPU-s", figures.resolve_proof.cpu >= GOAL_PROOF_PER_S)
            if last
            else ("-", None),
        )
        add(
            f"state proofs verified/s, {at}",
            figures.verify_state,
            "smt.verify_proof",
            (f"≥ {GOAL_PROOF_PER_S:,}/CPU-s", figures.verify_state.cpu >= GOAL_PROOF_PER_S),
        )
        add(f"client checks/s, proof + certificate, {at}", figures.verify_full, "ledger/proof.py")
    slowdown = small.resolve.wall / large.resolve.wall
    cpu_slowdown = small.resolve.cpu / large.resolve.cpu
    add(
        f"resolve cost at {large.size:,} / at {small.size:,}",
        ratio(slowdown),
        f"{ratio(cpu_slowdown)} in CPU time",
        (f"≤ {GOAL_RESOLVE_SLOWDOWN}x CPU", cpu_slowdown <= GOAL_RESOLVE_SLOWDOWN),
    )
    add(f"state proof size at {large.size:,}", f"{large.state_proof_bytes:,.0f} B")
    add(f"whole ResolveProof size at {large.size:,}", f"{large.resolve_proof_bytes:,.0f} B")
    add(f"disk bytes per identifier at {large.size:,}", f"{large.disk_bytes_per_id:,.0f} B")
    memory = large.memory or {}
    rss = memory.get("VmRSS", 0.0)
    peak = memory.get("VmHWM", 0.0)
    add(
        f"process RSS at {large.size:,}",
        f"{rss:,.0f} MB",
        f"anon {memory.get('RssAnon', 0):,.0f} + file {memory.get('RssFile', 0):,.0f}; "
        f"peak {peak:,.0f}",
        (
            f"< {GOAL_RSS_MB} MB, peak < {GOAL_PEAK_RSS_MB}",
            rss < GOAL_RSS_MB and peak < GOAL_PEAK_RSS_MB,
        ),
    )
    print_table(
        "Ledger: commit, resolve, proofs (signature checks excluded)",
        ["measure", "figure", "per thread CPU-s", "note"],
        rows,
        goals=goals,
        caption=(
            f"Rates of the median block (of {MEASURED_BLOCKS} blocks of {BLOCK_IDS} ids) or "
            f"median part (of {TIMED_PARTS}); commit = build (execute + tree update) + one "
            f"synced WriteBatch. Goals are judged per CPU-second of the calling thread "
            f"(issue 15); {load} (2 cores)."
        ),
    )
