"""Programs a benchmark needs from Debian's packages (etcd, wrk): found on PATH, or installed
with apt-get when missing. Only benchmarks call this, never the tests."""

from __future__ import annotations

import shutil
import subprocess

APT_TIMEOUT_S = 600


def find_or_install(binary: str, package: str) -> tuple[str | None, str]:
    """(path of `binary`, "") or (None, why not), installing `package` when it is missing."""
    found = shutil.which(binary)
    if found:
        return found, ""
    if shutil.which("apt-get") is None:
        return None, f"no {binary} and no apt-get"
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", package],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
        if done.returncode != 0:
            return None, f"{' '.join(command)} failed: {done.stderr.strip()[-200:]}"
    found = shutil.which(binary)
    return (found, "") if found else (None, f"{package} installed no {binary} binary")
