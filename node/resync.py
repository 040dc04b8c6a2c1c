"""`spark node resync`: set a stopped node's damaged ledger aside, so that its next start
creates a fresh ledger from genesis.json and fetches every block from its peers by block
sync (each block checked against its certificate and re-executed, as always).

Nothing is deleted: the ledger becomes `data/ledger.damaged-<UTC time>` for study, and the
acknowledged height goes beside it with the same suffix (it vouched for that ledger; the
fresh one starts at height 0). `data/last_signed` stays where it is: it is what keeps a
validator from signing again where it already signed, whatever its ledger holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.durable import AcknowledgedHeight
from sparkchain.node.home import NodeHome
from sparkchain.node.launcher import refuse_while_running


@dataclass(frozen=True, slots=True)
class Resynced:
    """What `resync` moved, for the CLI to print."""

    ledger_moved_to: Path | None  # None: there was no ledger (only the acknowledged height)
    acknowledged_height: int  # what the old ledger had been acknowledged up to
    acknowledged_moved_to: Path | None


def resync(home: NodeHome, now_s: float | None = None) -> Resynced:
    """Move the ledger (and acknowledged height) of the stopped node in `home` aside."""
    if not home.exists():
        raise SparkError(ErrorCode.NOT_FOUND, f"{home.root} is not a node home (no config.toml)")
    refuse_while_running(home, "stop it first (LevelDB allows one process)")
    marker = AcknowledgedHeight(home.acknowledged_height_path, home.ledger_dir)
    if not home.ledger_dir.exists() and not marker.path.exists():
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"{home.ledger_dir}: no ledger and no acknowledged height: nothing to set aside; "
            "the next start creates the ledger and syncs",
        )
    try:
        acknowledged = marker.read()
    except SparkError:
        acknowledged = 0  # a damaged marker is moved aside like a sound one
    suffix = f".damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now_s))}"
    ledger_to = None
    if home.ledger_dir.exists():
        ledger_to = _free_name(home.ledger_dir, suffix)
        home.ledger_dir.rename(ledger_to)
    acknowledged_to = None
    if marker.path.exists():
        acknowledged_to = _free_name(marker.path, suffix)
        marker.path.rename(acknowledged_to)
    return Resynced(ledger_to, acknowledged, acknowledged_to)


def _free_name(path: Path, suffix: str) -> Path:
    """`path` + `suffix`, or with -2, -3, ... when that exists (two resyncs in a second)."""
    candidate = path.with_name(path.name + suffix)
    count = 1
    while candidate.exists():
        count += 1
        candidate = path.with_name(f"{path.name}{suffix}-{count}")
    return candidate
