"""Storage damage is never silent (DESIGN §11, issue 10 finding 6): on real LevelDB files,
a ledger that lost its CURRENT file, a damaged log or a corrupt table is refused with
STORAGE_CORRUPT, the directory and the recovery (`spark node resync`), never replaced by a
new ledger, never opened below the height the node acknowledged, never a traceback.

The node processes here are observers of a test chain with no peers: an observer needs no
validator key in the genesis, and its start-up opens the ledger exactly as a validator's.
Damage is seeded; replay one seed alone with `DAMAGE_SEED=<seed> pytest ...`.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.node import keystore
from sparkchain.node.config import write_config
from sparkchain.node.durable import AcknowledgedHeight
from sparkchain.node.home import NodeHome, free_loopback_ports, node_config
from sparkchain.node.ledger import Ledger
from sparkchain.node.resync import resync
from sparkchain.node.runtime import open_ledger
from tests.helpers.chain import make_test_genesis
from tests.helpers.ledger import stopped_node_home

SEED = int(os.environ.get("DAMAGE_SEED", "20261206"))
BLOCKS = 7
DAMAGES_PER_KIND = 6
START_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parent.parent


def _stopped_node(root: Path, *, compact: bool = False) -> NodeHome:
    """An observer's home whose ledger holds BLOCKS blocks, all acknowledged, as a node
    leaves it when stopped. `compact`: everything in table files (.ldb) rather than the log."""
    home = stopped_node_home(root, BLOCKS, registrations_per_block=40)
    keystore.write_key_file(home.observer_key_path, SigningKey.from_seed(b"o" * 32))
    api_port, p2p_port = free_loopback_ports(2)
    config = node_config("observer1", "observer", f"127.0.0.1:{api_port}", f"127.0.0.1:{p2p_port}")
    write_config(home.config_path, config)
    if compact:
        db = plyvel.DB(str(home.ledger_dir))
        db.compact_range()
        db.close()
    AcknowledgedHeight(home.acknowledged_height_path, home.ledger_dir).record(BLOCKS)
    return home


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command that must exit by itself (a node refusing to start). A node that
    started instead is stopped by the timeout, which fails the test."""
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )


def _assert_refused(run: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert run.returncode != 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert line.startswith("error: STORAGE_CORRUPT: "), line
    for text in expected:
        assert text in line, line


def _start_commands(home: NodeHome) -> list[tuple[str, ...]]:
    root = str(home.root)
    return [
        ("sparkchain.node", "--home", root),
        ("sparkchain.cli.main", "node", "start", "--home", root),
    ]


def _damage_bytes(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    offset = rng.randrange(len(data) - 32)
    data[offset : offset + 32] = rng.randbytes(32)
    path.write_bytes(bytes(data))


def _the_file(home: NodeHome, pattern: str) -> Path:
    (found,) = [p for p in home.ledger_dir.glob(pattern) if p.stat().st_size > 0]
    return found


# ---- a ledger that lost its CURRENT file ----


def test_a_ledger_without_current_is_refused_not_replaced(tmp_path: Path) -> None:
    home = _stopped_node(tmp_path / "node")
    (home.ledger_dir / "CURRENT").unlink()
    files = {p.name: p.read_bytes() for p in home.ledger_dir.iterdir() if p.name != "LOG"}

    with pytest.raises(SparkError) as caught:
        Ledger.open(home.ledger_dir, make_test_genesis())
    assert caught.value.code is ErrorCode.STORAGE_CORRUPT
    assert str(home.ledger_dir) in caught.value.message
    assert f"spark node resync --home {home.root}" in caught.value.message
    # nothing was created or deleted: the old files are all there, unchanged
    assert not (home.ledger_dir / "CURRENT").exists()
    after = {p.name: p.read_bytes() for p in home.ledger_dir.iterdir() if p.name != "LOG"}
    assert after == files


def test_node_start_refuses_a_ledger_without_current(tmp_path: Path) -> None:
    home = _stopped_node(tmp_path / "node")
    (home.ledger_dir / "CURRENT").unlink()
    for command in _start_commands(home):
        _assert_refused(_run(*command), str(home.ledger_dir), "no CURRENT", "spark node resync")
    assert not (home.ledger_dir / "CURRENT").exists()


def test_an_empty_ledger_directory_is_still_created_from_genesis(tmp_path: Path) -> None:
    ledger_dir = tmp_path / "ledger"
    ledger_dir.mkdir()
    (ledger_dir / "LOG").write_text("a crash before LevelDB wrote anything else\n")
    with Ledger.open(ledger_dir, make_test_genesis()) as ledger:
        assert ledger.height == 0


def test_a_node_whose_ledger_is_gone_refuses_until_resync_and_creates_nothing(
    tmp_path: Path,
) -> None:
    home = _stopped_node(tmp_path / "node")
    shutil.rmtree(home.ledger_dir)

    with pytest.raises(SparkError) as caught:
        open_ledger(home, make_test_genesis())
    assert caught.value.code is ErrorCode.STORAGE_CORRUPT
    assert f"ledger at height 0 but height {BLOCKS} was acknowledged" in caught.value.message
    assert not home.ledger_dir.exists()

    done = resync(home)
    assert done.ledger_moved_to is None and done.acknowledged_height == BLOCKS
    ledger, _ = open_ledger(home, make_test_genesis())
    with ledger:
        assert ledger.height == 0


# ---- a damaged log ----


@pytest.mark.parametrize("attempt", range(DAMAGES_PER_KIND))
def test_random_bytes_in_the_log_never_open_below_the_acknowledged_height(
    tmp_path: Path, attempt: int
) -> None:
    home = _stopped_node(tmp_path / "node")
    rng = random.Random(SEED * 1000 + attempt)
    _damage_bytes(_the_file(home, "*.log"), rng)
    _assert_never_below_acknowledged(home)


def test_a_log_record_failing_its_checksum_is_refused_naming_the_log(tmp_path: Path) -> None:
    """Paranoid checks: without them LevelDB drops the record and what follows it, and the
    ledger opens at an earlier block as if nothing happened."""
    home = _stopped_node(tmp_path / "node")
    log = _the_file(home, "*.log")
    _damage_bytes(log, random.Random(SEED))
    with pytest.raises(SparkError) as caught:
        Ledger.open(home.ledger_dir, make_test_genesis())
    assert caught.value.code is ErrorCode.STORAGE_CORRUPT
    assert f"LevelDB reports damage in {log}: Corruption" in caught.value.message


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.999])
def test_a_truncated_log_never_opens_below_the_acknowledged_height(
    tmp_path: Path, keep: float
) -> None:
    home = _stopped_node(tmp_path / "node")
    log = _the_file(home, "*.log")
    with log.open("r+b") as file:
        file.truncate(int(log.stat().st_size * keep))
    _assert_never_below_acknowledged(home)


def _assert_never_below_acknowledged(home: NodeHome) -> None:
    """A clean refusal, or the ledger at the acknowledged height: what a node opens."""
    try:
        ledger, _ = open_ledger(home, make_test_genesis())
    except SparkError as error:
        assert error.code is ErrorCode.STORAGE_CORRUPT, error
        assert str(home.ledger_dir) in error.message
        assert "spark node resync" in error.message
        return
    with ledger:
        assert ledger.height == BLOCKS


def test_node_start_refuses_a_ledger_below_the_acknowledged_height(tmp_path: Path) -> None:
    home = _stopped_node(tmp_path / "node")
    log = _the_file(home, "*.log")
    with log.open("r+b") as file:  # a log cut short loses its last blocks without an error
        file.truncate(log.stat().st_size // 2)
    with Ledger.open(home.ledger_dir, make_test_genesis()) as ledger:
        below = ledger.height
    assert below < BLOCKS
    _assert_refused(
        _run("sparkchain.node", "--home", str(home.root)),
        f"ledger at height {below} but height {BLOCKS} was acknowledged",
        f"spark node resync --home {home.root}",
    )


# ---- a corrupt table file ----


def test_a_corrupt_table_stops_node_start_and_ledger_verify_with_a_typed_error(
    tmp_path: Path,
) -> None:
    home = _stopped_node(tmp_path / "node", compact=True)
    table = _the_file(home, "*.ldb")
    rng = random.Random(SEED)
    data = bytearray(table.read_bytes())
    for offset in range(0, len(data) - 64, 1024):  # every block of the table is hit
        data[offset : offset + 32] = rng.randbytes(32)
    table.write_bytes(bytes(data))

    for command in _start_commands(home):
        _assert_refused(_run(*command), str(home.ledger_dir), "spark node resync")
    verify = _run("sparkchain.cli.main", "ledger", "verify", "--home", str(home.root))
    _assert_refused(verify, str(home.ledger_dir), "spark node resync")


@pytest.mark.parametrize("attempt", range(DAMAGES_PER_KIND))
def test_ledger_verify_reports_random_bytes_in_a_table_as_damage(
    tmp_path: Path, attempt: int
) -> None:
    """Reads check each block's checksum: damage is STORAGE_CORRUPT or an inconsistency,
    exit 1 either way, never a traceback."""
    home = _stopped_node(tmp_path / "node", compact=True)
    _damage_bytes(_the_file(home, "*.ldb"), random.Random(SEED * 1000 + attempt))
    verify = _run("sparkchain.cli.main", "ledger", "verify", "--home", str(home.root))
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "Traceback" not in verify.stderr, verify.stderr[-3000:]
    assert "error: STORAGE_CORRUPT: " in verify.stderr or "inconsistency at block" in verify.stderr


# ---- spark node resync ----


def test_resync_moves_the_ledger_and_acknowledged_height_aside_and_keeps_last_signed(
    tmp_path: Path,
) -> None:
    home = _stopped_node(tmp_path / "node")
    (home.ledger_dir / "CURRENT").unlink()
    home.last_signed_path.write_bytes(b"what the validator signed last")
    ledger_files = sorted(p.name for p in home.ledger_dir.iterdir())

    run = _run("sparkchain.cli.main", "node", "resync", "--home", str(home.root))

    assert run.returncode == 0, run.stderr
    (moved,) = home.data_dir.glob("ledger.damaged-*")
    assert sorted(p.name for p in moved.iterdir()) == ledger_files  # nothing deleted
    assert not home.ledger_dir.exists()
    (marker,) = home.data_dir.glob("acknowledged_height.damaged-*")
    assert AcknowledgedHeight(marker, moved).read() == BLOCKS
    assert not home.acknowledged_height_path.exists()
    assert home.last_signed_path.read_bytes() == b"what the validator signed last"
    assert str(moved) in run.stdout and "peers" in run.stdout
    # the next start creates a fresh ledger, which the acknowledged height does not refuse
    ledger, _ = open_ledger(home, make_test_genesis())
    with ledger:
        assert ledger.height == 0


def test_resync_twice_keeps_both_damaged_ledgers(tmp_path: Path) -> None:
    home = _stopped_node(tmp_path / "node")
    resync(home, now_s=0)
    home.ledger_dir.mkdir()
    (home.ledger_dir / "CURRENT").write_text("MANIFEST-000002\n")
    resync(home, now_s=0)
    assert len(list(home.data_dir.glob("ledger.damaged-*"))) == 2


def test_resync_refuses_while_a_process_holds_the_ledger(tmp_path: Path) -> None:
    home = _stopped_node(tmp_path / "node")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import plyvel, sys; db = plyvel.DB(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(home.ledger_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        run = _run("sparkchain.cli.main", "node", "resync", "--home", str(home.root))
    finally:
        holder.communicate("", timeout=10)
    assert run.returncode == 3, run.stderr
    assert "error: UNAVAILABLE: " in run.stderr and "is running" in run.stderr
    assert (home.ledger_dir / "CURRENT").exists()
    assert not list(home.data_dir.glob("ledger.damaged-*"))
