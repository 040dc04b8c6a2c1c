"""A node home on a small tmpfs (`mount -t tmpfs -o size=`), to fill its disk on purpose.

We run as root on these machines, so mounting works; where it does not, `mount_home` raises
`DiskUnavailable` with the reason and the caller skips the full-disk nemesis, saying so.
Every mount is unmounted on every exit path: by `unmount_all` in the harness's finally,
and by atexit should the harness die otherwise.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
from pathlib import Path

BALLAST = "chaos-ballast"  # the file that fills the disk; never a name the node uses
_mounted: list[Path] = []


class DiskUnavailable(Exception):
    pass


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise DiskUnavailable(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


def mount_home(home: Path, size_mb: int) -> None:
    """Move a stopped node's home onto a fresh tmpfs of `size_mb` MiB at the same path."""
    aside = home.with_name(home.name + ".on-disk")
    home.rename(aside)
    home.mkdir()
    try:
        _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(home))
    except DiskUnavailable:
        home.rmdir()
        aside.rename(home)
        raise
    _mounted.append(home)
    for entry in aside.iterdir():
        shutil.move(str(entry), home / entry.name)
    aside.rmdir()


def fill(home: Path) -> int:
    """Fill the disk of `home` to the last byte; the bytes written."""
    written = 0
    block = b"\0" * (1 << 20)
    with (home / BALLAST).open("ab") as ballast:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    written += os.write(ballast.fileno(), block[:size])
            except OSError:
                continue
    return written


def free(home: Path, size_mb: int) -> None:
    """Space returns: a larger disk (remount with `size_mb`) and no ballast."""
    _run("mount", "-o", f"remount,size={size_mb}m", str(home))
    (home / BALLAST).unlink(missing_ok=True)


def unmount_all() -> None:
    """Unmount every home mounted here (a node on it must have been stopped first)."""
    while _mounted:
        home = _mounted.pop()
        subprocess.run(["umount", "-l", str(home)], capture_output=True, timeout=60, check=False)


atexit.register(unmount_all)
