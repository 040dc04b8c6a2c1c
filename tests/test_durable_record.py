"""DurableRecord (node/durable.py): the last-signed record and the acknowledged height are
rewritten in place, in two slots, and a write torn part-way never loses the record before."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparkchain.consensus.lastsigned import LastSigned
from sparkchain.consensus.messages import Step
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.driver import read_last_signed
from sparkchain.node.durable import (
    MIN_SLOT_BYTES,
    RECORD_MAGIC,
    AcknowledgedHeight,
    DamagedRecord,
    DurableRecord,
)


def _record(height: int, step: Step = Step.PREVOTE) -> LastSigned:
    return LastSigned(b"k" * 32, height, 0, step, b"h" * 32, -1, b"s" * 64)


def test_records_after_the_first_are_written_in_place(tmp_path: Path) -> None:
    path = tmp_path / "record"
    record = DurableRecord(path)
    assert record.read() is None
    record.write(b"first")
    inode, size = path.stat().st_ino, path.stat().st_size
    for number in range(2, 7):
        record.write(f"record {number}".encode())
        # the same file, the same size: no rename, no new blocks, so no journal commit
        assert (path.stat().st_ino, path.stat().st_size) == (inode, size)
        assert DurableRecord(path).read() == f"record {number}".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record"]
    assert path.read_bytes().startswith(RECORD_MAGIC)


def test_a_record_that_outgrows_its_slot_rebuilds_the_file_and_stays_big(
    tmp_path: Path,
) -> None:
    path = tmp_path / "record"
    record = DurableRecord(path)
    record.write(b"small")
    small_size = path.stat().st_size
    big = os.urandom(3 * MIN_SLOT_BYTES)  # a locked block
    record.write(big)
    assert DurableRecord(path).read() == big
    grown = path.stat()
    assert grown.st_size > small_size
    record.write(b"small again")  # in place: slots never shrink
    assert (path.stat().st_ino, path.stat().st_size) == (grown.st_ino, grown.st_size)
    assert DurableRecord(path).read() == b"small again"


def test_a_file_of_the_old_format_is_read_whole_and_converted_by_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "last_signed"
    old = _record(4)
    path.write_bytes(old.to_bytes())  # as write_durably left it before
    assert read_last_signed(path) == old
    newer = _record(5)
    DurableRecord(path).write(newer.to_bytes())
    assert read_last_signed(path) == newer
    assert path.read_bytes().startswith(RECORD_MAGIC)
    height_path = tmp_path / "acknowledged_height"
    height_path.write_text("12\n")
    acknowledged = AcknowledgedHeight(height_path, tmp_path / "ledger")
    assert acknowledged.read() == 12
    acknowledged.record(13)
    assert AcknowledgedHeight(height_path, tmp_path / "ledger").read() == 13


def test_a_write_torn_part_way_leaves_the_record_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last_signed"
    record = DurableRecord(path)
    for height in (1, 2, 3):
        record.write(_record(height).to_bytes())
    real_pwrite = os.pwrite

    def crash_part_way(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, data[: len(data) // 2], offset)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", crash_part_way)
    with pytest.raises(OSError, match="No space"):
        record.write(_record(4, Step.PRECOMMIT).to_bytes())
    assert read_last_signed(path) == _record(3)
    monkeypatch.undo()
    record.write(_record(4, Step.PRECOMMIT).to_bytes())  # the torn slot is written again
    assert read_last_signed(path) == _record(4, Step.PRECOMMIT)


def test_a_writer_never_writes_over_a_newer_record_it_has_not_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only one object writes a file (the driver's, the committer's); should a second one
    write too, the first must look again, not overwrite the newest slot on what it saw."""
    path = tmp_path / "record"
    first, second = DurableRecord(path), DurableRecord(path)
    first.write(b"one")
    second.write(b"two")  # into the slot `first` would take next
    real_pwrite = os.pwrite

    def crash_part_way(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, data[: len(data) // 2], offset)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "pwrite", crash_part_way)
    with pytest.raises(OSError):
        first.write(b"three")
    assert DurableRecord(path).read() == b"two"  # the slot torn was the older one
    monkeypatch.undo()
    first.write(b"three")
    assert DurableRecord(path).read() == b"three"
    second.write(b"four")
    assert DurableRecord(path).read() == b"four"


def test_a_record_removed_under_its_writer_is_written_anew(tmp_path: Path) -> None:
    path = tmp_path / "record"
    record = DurableRecord(path)
    record.write(b"one")
    record.write(b"two")
    path.unlink()
    record.write(b"three")
    assert DurableRecord(path).read() == b"three"


def test_a_short_write_is_finished_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "record"
    record = DurableRecord(path)
    record.write(b"one")
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, at: real_pwrite(fd, data[:3], at))
    record.write(b"the second record, three bytes at a time")
    assert DurableRecord(path).read() == b"the second record, three bytes at a time"
    monkeypatch.setattr(os, "pwrite", lambda fd, data, at: 0)
    with pytest.raises(OSError, match="short write"):
        record.write(b"a third that does not fit")
    assert DurableRecord(path).read() == b"the second record, three bytes at a time"


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_damaged_slot_falls_back_to_the_other_and_two_are_storage_corrupt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "last_signed"
    record = DurableRecord(path)
    record.write(_record(1).to_bytes())  # slot 0
    record.write(_record(2).to_bytes())  # slot 1
    header, capacity = 64, MIN_SLOT_BYTES
    _flip(path, header + capacity + 60)  # a byte of slot 1's payload
    assert read_last_signed(path) == _record(1)
    _flip(path, header + 60)  # and of slot 0's
    with pytest.raises(SparkError) as caught:
        read_last_signed(path)
    assert caught.value.code is ErrorCode.STORAGE_CORRUPT
    assert "last-signed record: neither slot holds a whole record" in caught.value.message
    with pytest.raises(DamagedRecord):
        DurableRecord(path).read()
    # a newer record written over the damaged file is whole again
    record.write(_record(3).to_bytes())
    assert read_last_signed(path) == _record(3)


def test_a_damaged_acknowledged_height_names_the_file_and_the_recovery(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "acknowledged_height"
    acknowledged = AcknowledgedHeight(path, tmp_path / "data" / "ledger")
    acknowledged.record(7)
    acknowledged.record(8)
    assert acknowledged.read() == 8
    path.write_bytes(path.read_bytes()[:100])  # cut short
    with pytest.raises(SparkError) as caught:
        acknowledged.read()
    assert caught.value.code is ErrorCode.STORAGE_CORRUPT
    assert str(path) in caught.value.message
    assert "spark node resync" in caught.value.message


_WRITER = """
import sys
from pathlib import Path
from sparkchain.node.durable import DurableRecord
record = DurableRecord(Path(sys.argv[1]))
for number in range(1, 1_000_000):
    size = 40_000 if number % 7 == 0 else 100  # now and then a record that needs a big slot
    record.write(number.to_bytes(8, "big") * (size // 8))
    print(number, flush=True)
"""


@pytest.mark.parametrize("kill_after_ms", [5, 20, 60, 150])
def test_a_writer_killed_at_any_moment_leaves_a_whole_record_no_older_than_written(
    tmp_path: Path, kill_after_ms: int
) -> None:
    """SIGKILL a process rewriting the record as fast as it can (its slots growing once):
    the record read after is whole, at least as new as the last write that had returned
    and at most the one under way. (A process's death does not tear a write the kernel
    took; a torn slot, as a power cut leaves it, is the monkeypatched tests' above.)"""
    path = tmp_path / "record"
    for _ in range(3):  # each round goes on from the record the last one left
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        first = writer.stdout.readline()  # started and wrote once
        assert first.strip().isdigit()
        time.sleep(kill_after_ms / 1000)
        writer.kill()
        out, _ = writer.communicate(timeout=30)
        done = [int(line) for line in [first, *out.splitlines()] if line.strip().isdigit()]
        raw = DurableRecord(path).read()
        assert raw is not None and len(raw) >= 8
        number = int.from_bytes(raw[:8], "big")
        assert raw == number.to_bytes(8, "big") * (len(raw) // 8)  # whole
        assert number >= done[-1]
        assert number <= done[-1] + 1  # at most the write that was under way
