"""Signing is fail-stop (DESIGN §6): a validator that cannot persist its last-signed record
stops signing at once, sends nothing it has not persisted, and exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.cli.main import main
from sparkchain.identifiers.limits import MAX_VALUE_DATA_BYTES
from sparkchain.identifiers.tx import value
from sparkchain.node.commit import Committer
from sparkchain.node.durable import write_durably
from sparkchain.node.events import CommitBus
from sparkchain.node.home import NodeHome, free_loopback_ports
from sparkchain.proto import types_pb2 as pb
from tests.chaos.disk import fill
from tests.helpers.ledger import LedgerChain, certificate, register_widget

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


# ---- a block that cannot be written (found by the chaos harness's full disk, tests/chaos) ----


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (we run as root); skipped where mounting is not permitted."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def test_a_block_written_to_a_full_disk_is_an_os_error_and_nothing_of_it_is_kept(
    small_disk: Path,
) -> None:
    chain = LedgerChain(small_disk / "ledger")
    try:
        register_widget(chain)
        fill(small_disk)
        acme = chain.signer("acme")
        # larger than a page: a small batch can land in the slack of the log file's last
        # tmpfs page and succeed on a "full" disk (it did once history stopped copying
        # records, schema 5), which is not what this test is about
        big = value(1, "DATA", "x" * MAX_VALUE_DATA_BYTES)
        tx = acme.register("88/Widget-2", [big], now_ms=chain.next_time_ms)
        built = chain.build([tx])
        with pytest.raises(OSError, match=r"cannot write block 2 to the ledger: .*space"):
            chain.ledger.commit_block(
                built.pending, certificate(chain.genesis, 2, built.block_hash)
            )
        assert chain.ledger.height == 1
    finally:
        chain.close()


class _FullDiskLedger:
    height = 4

    def commit_block(self, _pending: object, _certificate: object) -> None:
        raise OSError("cannot write block 5 to the ledger: No space left on device")


def test_a_block_the_ledger_cannot_write_fail_stops_the_node() -> None:
    reasons: list[str] = []
    bus = CommitBus()
    published: list[int] = []
    bus.publish_block = lambda height, *_rest: published.append(height)  # type: ignore[method-assign]
    committer = Committer(
        _FullDiskLedger(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # never reached: the mempool forgets nothing
        bus,
        on_fail_stop=reasons.append,
    )
    with pytest.raises(OSError):
        committer.commit(object(), pb.CommitCertificate(height=5))  # type: ignore[arg-type]
    assert reasons == ["cannot write block 5 to the ledger: No space left on device"]
    assert published == []  # no waiter hears of a block that is not on disk
