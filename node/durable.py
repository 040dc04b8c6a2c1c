"""Small files the node must never lose or find half-written, and the acknowledged height.

`write_durably` writes such a file whole (a temporary file, fsync, rename, fsync of the
directory); `DurableRecord` rewrites one that changes at every vote or commit (the
validator's last-signed record, the acknowledged height) in place. Either way the caller
may rely on the write once the function returns.

The acknowledged height (`data/acknowledged_height`, DESIGN §11) is the height of the last
block this node committed, recorded after each commit and before any client or peer is
told of it. A ledger found below it at start has lost blocks the node already vouched for
(a damaged LevelDB log that reopens at an earlier block): the node refuses to start rather
than serve, or sign on, an older chain as if it were current.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import struct
from pathlib import Path

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.storage import resync_advice


def write_durably(path: Path, data: bytes, size: int | None = None) -> None:
    """Durable before it returns: write a temp file, fsync it, rename it over the old one,
    fsync the directory. A crash leaves the old content or the new one, never half. With
    `size`, the file is `data` then zero bytes up to `size` (a hole: none written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < len(data):  # a write may be short (a disk filling up part-way)
            count = os.write(fd, data[written:])
            if count <= 0:
                raise OSError(errno.EIO, f"short write of {temporary}: {written} of {len(data)}")
            written += count
        if size is not None:
            os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# DurableRecord's file: a header written only by write_durably, then two slots
RECORD_MAGIC = b"\x89SPKREC\n"  # no record of the old format starts with 0x89
_HEADER = struct.Struct(">8sI")  # magic, slot capacity in bytes
_HEADER_BYTES = 64  # the header, zero-padded
_SLOT = struct.Struct(">QI32s")  # sequence (0: empty), payload length, SHA-256 of the rest
_SEALED = struct.Struct(">QI")  # what the SHA-256 covers before the payload
MIN_SLOT_BYTES = 4096


class DamagedRecord(SparkError):
    """A record file of the slotted format whose slots hold no whole record."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(ErrorCode.STORAGE_CORRUPT, f"{path}: {detail}")
        self.detail = detail


class DurableRecord:
    """A small file rewritten often, in place: the validator's last-signed record before
    every vote it sends, the acknowledged height after every commit.

    Layout: a header (magic, slot capacity) then two slots of that capacity, each a
    sequence number, the payload's length, a SHA-256 over both and the payload, then the
    payload. A write goes to the slot that does not hold the newest record, then
    `fdatasync`: the file keeps its size, and its blocks once each slot has been written
    (a rebuilt file's slots start as a hole), so the write waits for no journal commit
    (ext4 makes a commit first flush what other files wrote, LevelDB's tables among them),
    and a crash part-way tears only that slot while the other still holds the record
    before. Reading takes the whole slot of the higher sequence. Measured on this
    machine's ext4, a 300-byte record: 0.41 ms median here against 1.15 ms through
    `write_durably` (p99 8.8 against 21.8 ms while two processes append 3 MB and fsync).

    The first write over a file of the old format (the record whole, as `write_durably`
    left it; still read as such), and a record that outgrows its slot (a locked block),
    rebuild the file through `write_durably` with slots of the next power of two; slots
    never shrink. One process writes the file (the node's pid lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # (slot capacity, slot of the newest record, its sequence) once read or written
        self._newest: tuple[int, int, int] | None = None

    def read(self) -> bytes | None:
        """The newest record; None when there is no file. DamagedRecord (STORAGE_CORRUPT)
        when neither slot holds a whole record; OSError when the file cannot be read."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._newest = None
            return None
        if not raw.startswith(RECORD_MAGIC):
            self._newest = None
            return raw  # the old format: the record whole
        capacity, slot, sequence, payload = _newest_slot(self.path, raw)
        self._newest = (capacity, slot, sequence)
        return payload

    def write(self, data: bytes) -> None:
        """Durable before it returns; OSError (the caller fail-stops) leaves the record
        before this one readable."""
        fresh = False
        while True:
            if self._newest is None:
                # a damaged file is rebuilt below: this record is newer than any it held
                with contextlib.suppress(DamagedRecord):
                    self.read()
                fresh = True
            newest = self._newest
            sequence = 1 if newest is None else newest[2] + 1
            if newest is None or _SLOT.size + len(data) > newest[0]:
                self._rebuild(data, sequence)
                return
            capacity, slot, known = newest
            if fresh or _slots_as_known(self.path, capacity, slot, known):
                break
            # written by someone else since (there should be no one), or a write of ours
            # failed part-way: look again rather than write over the newest record
            self._newest = None
        target = 1 - slot
        fd = os.open(self.path, os.O_WRONLY)
        try:
            _write_all(fd, _slot_bytes(sequence, data), _HEADER_BYTES + target * capacity)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self._newest = (capacity, target, sequence)

    def _rebuild(self, data: bytes, sequence: int) -> None:
        capacity = MIN_SLOT_BYTES
        while capacity < _SLOT.size + len(data):
            capacity *= 2
        header = _HEADER.pack(RECORD_MAGIC, capacity).ljust(_HEADER_BYTES, b"\0")
        # the rest of both slots a hole: slot 1 reads as empty (sequence 0), and its blocks
        # are allocated by its first write, once
        content = header + _slot_bytes(sequence, data)
        write_durably(self.path, content, size=_HEADER_BYTES + 2 * capacity)
        self._newest = (capacity, 0, sequence)


def _slot_bytes(sequence: int, payload: bytes) -> bytes:
    return _SLOT.pack(sequence, len(payload), _seal(sequence, payload)) + payload


def _seal(sequence: int, payload: bytes) -> bytes:
    """A slot's SHA-256: over its sequence, the payload's length and the payload (a
    locked block's megabytes are hashed where they lie, not copied first)."""
    sealing = hashlib.sha256(_SEALED.pack(sequence, len(payload)))
    sealing.update(payload)
    return sealing.digest()


def _slots_as_known(path: Path, capacity: int, newest: int, sequence: int) -> bool:
    """Whether slot `newest` still starts with `sequence` and the other with a lower one
    (two reads of a slot header: cheap beside the write and its sync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False  # removed under the node: written anew
    try:
        heads = [os.pread(fd, _SLOT.size, _HEADER_BYTES + s * capacity) for s in (0, 1)]
    finally:
        os.close(fd)
    found = [_SLOT.unpack(h)[0] if len(h) == _SLOT.size else -1 for h in heads]
    return found[newest] == sequence and found[1 - newest] < sequence


def _newest_slot(path: Path, raw: bytes) -> tuple[int, int, int, bytes]:
    """(capacity, slot, sequence, payload) of the newest whole slot of a record file."""
    if len(raw) < _HEADER_BYTES:
        raise DamagedRecord(path, f"{len(raw)} bytes: the header is cut short")
    _, capacity = _HEADER.unpack_from(raw)
    if capacity < _SLOT.size or len(raw) != _HEADER_BYTES + 2 * capacity:
        raise DamagedRecord(path, f"{len(raw)} bytes do not hold two slots of {capacity}")
    newest: tuple[int, int, int, bytes] | None = None
    for slot in (0, 1):
        at = _HEADER_BYTES + slot * capacity
        sequence, length, digest = _SLOT.unpack_from(raw, at)
        if sequence == 0 or length > capacity - _SLOT.size:
            continue
        payload = raw[at + _SLOT.size : at + _SLOT.size + length]
        if _seal(sequence, payload) != digest:
            continue  # torn by a crash while it was written: the other slot is older
        if newest is None or sequence > newest[2]:
            newest = (capacity, slot, sequence, payload)
    if newest is None:
        raise DamagedRecord(path, "neither slot holds a whole record")
    return newest


def _write_all(fd: int, data: bytes, offset: int) -> None:
    written = 0
    rest = memoryview(data)  # what is left of a short write, without copying it
    while written < len(data):  # a write may be short (a disk filling up part-way)
        count = os.pwrite(fd, rest[written:], offset + written)
        if count <= 0:
            raise OSError(errno.EIO, f"short write at {offset}: {written} of {len(data)}")
        written += count


class AcknowledgedHeight:
    """The file that holds the node's acknowledged height: decimal text and a newline,
    kept by a DurableRecord (read whole from a file of the old form)."""

    def __init__(self, path: Path, ledger_dir: Path) -> None:
        self.path = path
        self._ledger_dir = ledger_dir
        self._record = DurableRecord(path)

    def read(self) -> int:
        """The recorded height; 0 when none was recorded (a new node, or after a resync)."""
        try:
            raw = self._record.read()
            if raw is None:
                return 0
            text = raw.decode("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise self._corrupt(f"cannot read: {exc}") from exc
        except DamagedRecord as exc:
            raise self._corrupt(exc.detail) from None
        if not text.endswith("\n") or not text[:-1].isdigit():
            raise self._corrupt(f"not a height: {text[:32]!r}")
        return int(text)

    def record(self, height: int) -> None:
        """Durable before it returns (one small write in place and fdatasync per commit)."""
        self._record.write(f"{height}\n".encode("ascii"))

    def check(self, ledger_height: int) -> None:
        """Refuse a ledger below the acknowledged height."""
        acknowledged = self.read()
        if ledger_height < acknowledged:
            raise SparkError(
                ErrorCode.STORAGE_CORRUPT,
                f"{self._ledger_dir}: ledger at height {ledger_height} but height "
                f"{acknowledged} was acknowledged ({self.path}): blocks this node committed "
                f"are missing; {resync_advice(self._ledger_dir)}",
            )

    def _corrupt(self, detail: str) -> SparkError:
        return SparkError(
            ErrorCode.STORAGE_CORRUPT,
            f"{self.path}: acknowledged height: {detail}; {resync_advice(self._ledger_dir)}",
        )
