"""What a fresh machine installs: one import package, exactly the locked versions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from sparkchain.node.gateway_explorer import STATIC_FILES

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_wheel_installs_one_top_level_import_package(tmp_path: Path) -> None:
    # a copy, so setuptools' build/ folder does not land in the work tree
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__"),
    )
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("sparkchain-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level_file,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        declared = archive.read(top_level_file).decode().split()
    importable = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert importable == {"sparkchain"}
    assert declared == ["sparkchain"]
    for package in ("node", "cli", "consensus", "identifiers", "ledger", "proto"):
        assert f"sparkchain/{package}/__init__.py" in names, f"{package} missing from the wheel"
    assert "sparkchain/node/__main__.py" in names
    # the explorer's page is served from the installed package (node/explorer/)
    for name in STATIC_FILES:
        assert f"sparkchain/node/explorer/{name}" in names, f"explorer/{name} not in the wheel"


def test_installed_versions_are_exactly_the_lock() -> None:
    pins = dict(PIN.findall((REPO / "requirements.lock").read_text()))
    assert {"grpcio", "grpcio-tools", "protobuf", "plyvel", "pytest"} <= set(pins)
    wrong = {
        name: (version, metadata.version(name))
        for name, version in pins.items()
        if metadata.version(name) != version
    }
    assert not wrong, f"installed versions differ from requirements.lock (pin, installed): {wrong}"


def test_lock_pins_every_declared_dependency() -> None:
    lock = (REPO / "requirements.lock").read_text()
    pinned = {_canonical(name) for name, _ in PIN.findall(lock)}
    declared = metadata.requires("sparkchain") or []
    names = {_canonical(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]) for req in declared}
    assert names - pinned == set(), f"declared but not locked: {sorted(names - pinned)}"
