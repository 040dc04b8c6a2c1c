"""Small files the node must never lose or find half-written, and the acknowledged height.

`write_durably` is how every such file is written (the validator's last-signed record,
the acknowledged height): the caller may rely on it once the function returns.

The acknowledged height (`data/acknowledged_height`, DESIGN §11) is the height of the last
block this node committed, recorded after each commit and before any client or peer is
told of it. A ledger found below it at start has lost blocks the node already vouched for
(a damaged LevelDB log that reopens at an earlier block): the node refuses to start rather
than serve, or sign on, an older chain as if it were current.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.storage import resync_advice


def write_durably(path: Path, data: bytes) -> None:
    """Durable before it returns: write a temp file, fsync it, rename it over the old one,
    fsync the directory. A crash leaves the old content or the new one, never half."""
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
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class AcknowledgedHeight:
    """The file that holds the node's acknowledged height, as decimal text."""

    def __init__(self, path: Path, ledger_dir: Path) -> None:
        self.path = path
        self._ledger_dir = ledger_dir

    def read(self) -> int:
        """The recorded height; 0 when none was recorded (a new node, or after a resync)."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            raise self._corrupt(f"cannot read: {exc}") from exc
        if not text.endswith("\n") or not text[:-1].isdigit():
            raise self._corrupt(f"not a height: {text[:32]!r}")
        return int(text)

    def record(self, height: int) -> None:
        """Durable before it returns (one small fsynced write and a rename per commit)."""
        write_durably(self.path, f"{height}\n".encode("ascii"))

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
