"""Signing is fail-stop (DESIGN §6): a validator that cannot persist its last-signed record
stops signing at once, sends nothing it has not persisted, and exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparkchain.cli.main import main
from sparkchain.node.durable import write_durably
from sparkchain.node.home import NodeHome, free_loopback_ports

EXIT_TIMEOUT_S = 60.0


def test_a_short_write_fails_and_keeps_the_good_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last_signed"
    write_durably(path, b"the good record")
    real_write = os.write
    calls: list[int] = []

    def disk_fills_part_way(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:5])  # a short write, then nothing more fits
        return 0

    monkeypatch.setattr(os, "write", disk_fills_part_way)
    with pytest.raises(OSError, match="short write"):
        write_durably(path, b"a newer record that does not fit")
    assert path.read_bytes() == b"the good record"
    assert calls == [32, 27]  # it tried to write the rest after the short write


def test_a_write_that_goes_through_in_pieces_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:3]))
    path = tmp_path / "last_signed"
    write_durably(path, b"0123456789abcdef")
    assert path.read_bytes() == b"0123456789abcdef"


def test_a_validator_that_cannot_persist_its_record_exits_without_signing(
    tmp_path: Path,
) -> None:
    api_port, p2p_port = free_loopback_ports(2)
    root = tmp_path / "home"
    argv = ["init", "--home", str(root), "--chain-id", "fail-stop"]
    argv += ["--api-listen", f"127.0.0.1:{api_port}", "--p2p-listen", f"127.0.0.1:{p2p_port}"]
    assert main(argv) == 0
    home = NodeHome(root)
    # the record is written through a temporary file beside it: make that a directory, so
    # the very first signature (block 1's proposal) cannot be persisted
    blocker = home.last_signed_path.with_name(home.last_signed_path.name + ".tmp")
    blocker.mkdir(parents=True)
    run = subprocess.run(
        [sys.executable, "-m", "sparkchain.node", "--home", str(root)],
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 1, run.stderr[-2000:]
    assert "error: fail-stop: cannot persist the last-signed record" in run.stderr
    assert '"fail_stop"' in run.stderr  # the critical log line, for the operator
    assert not home.last_signed_path.exists()  # nothing was signed on record
    # nothing was committed or sent: the node's closing totals say so
    (totals,) = [json.loads(line) for line in run.stderr.splitlines() if '"peer_totals"' in line]
    assert totals["height"] == 0
    assert not any(value for name, value in totals.items() if name.startswith("sent_"))
