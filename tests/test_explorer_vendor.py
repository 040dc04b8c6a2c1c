"""The explorer's vendored fallback crypto (node/explorer/vendor/) is exactly what
`make explorer-vendor` makes from the pinned npm packages: the same `npm ci` of
node/explorer_deps in a temporary folder, compared byte for byte. Needs npm and the npm
registry (as CI has); without npm it fails, naming what is missing, rather than skip."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.explorer_vendor import (
    DEPS_DIR,
    PACKAGES,
    VENDOR_DIR,
    build,
    locked_packages,
    vendor_files,
    vendor_records,
)

pytestmark = pytest.mark.timeout(360)
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_the_committed_vendor_files_are_what_npm_ci_gives(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.fail(
            "npm is not installed: this test rebuilds node/explorer/vendor/ with `npm ci` to "
            "prove the committed files fresh (install Node.js and npm, e.g. `apt-get install npm`)"
        )
    build(tmp_path / "vendor")
    fresh, committed = files_of(tmp_path / "vendor"), files_of(VENDOR_DIR)
    assert sorted(fresh) == sorted(committed), "run `make explorer-vendor` and commit the result"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale: {stale}; run `make explorer-vendor` and commit the result"
    names = {f"vendor/{name}" for name in committed}
    assert names == set(vendor_files()) | vendor_records()


def test_the_packages_are_pinned_exactly_with_integrity() -> None:
    manifest = json.loads((DEPS_DIR / "package.json").read_text())
    assert set(manifest["dependencies"]) == set(PACKAGES)
    assert all(EXACT_VERSION.match(v) for v in manifest["dependencies"].values()), manifest
    pinned = locked_packages((DEPS_DIR / "package-lock.json").read_text())
    for package, (version, licence, integrity) in pinned.items():
        assert version == manifest["dependencies"][package]
        assert licence == "MIT" and integrity.startswith("sha512-")
        assert version in (VENDOR_DIR / "README.md").read_text()
        assert integrity in (VENDOR_DIR / "README.md").read_text()


@pytest.mark.parametrize(
    "lock",
    ["not json", "{}", '{"packages": {}}', '{"packages": {"node_modules/@noble/ed25519": {}}}'],
)
def test_a_lock_without_the_pins_is_refused_naming_it(lock: str) -> None:
    with pytest.raises(SparkError) as raised:
        locked_packages(lock)
    assert raised.value.code == ErrorCode.INVALID_CONFIG
    assert "package-lock.json" in str(raised.value)


def test_without_npm_the_build_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SparkError) as raised:
        build(tmp_path / "vendor")
    assert raised.value.code == ErrorCode.UNAVAILABLE
    assert "npm is not installed" in str(raised.value)
    assert not (tmp_path / "vendor").exists()
