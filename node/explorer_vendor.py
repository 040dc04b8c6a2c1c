"""The explorer's fallback crypto, vendored (issue 12): the noble libraries from the npm
registry, pinned with their integrity hashes in node/explorer_deps/package-lock.json, and
copied unmodified into node/explorer/vendor/. `make explorer-vendor` runs

    python -m sparkchain.node.explorer_vendor --output node/explorer/vendor

which runs `npm ci` (exactly the lock's versions, each checked against its integrity hash)
in a scratch folder, copies the files the page imports and each package's LICENSE byte for
byte, and writes README.md (package, version, licence, integrity) and versions.js (the
versions the page names in its verdict) beside them. The output is committed: the gateway
serves it from the package, and tests/test_explorer_vendor.py runs the same build and fails
when a committed byte differs.

The page imports the files by relative paths (noble's own modules import each other as
`./x.js`), so no import map and no bundler are needed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError

DEPS_DIR: Final = Path(__file__).resolve().parent / "explorer_deps"
VENDOR_DIR: Final = Path(__file__).resolve().parent / "explorer" / "vendor"
NPM_INPUTS: Final = ("package.json", "package-lock.json", ".npmrc")
NPM_CI_TIMEOUT_S: Final = 300
# the npm package, the folder under vendor/ it is copied to, and the files the page needs
PACKAGES: Final = {
    "@noble/ed25519": ("noble-ed25519", ("index.js", "LICENSE")),
    "@noble/hashes": ("noble-hashes", ("sha2.js", "_md.js", "_u64.js", "utils.js", "LICENSE")),
}
README: Final = "README.md"
VERSIONS_JS: Final = "versions.js"


def vendor_files() -> dict[str, str]:
    """The served files under vendor/ (paths relative to node/explorer/) and their types: the
    scripts the page imports."""
    files = {f"vendor/{VERSIONS_JS}": "text/javascript"}
    for folder, names in PACKAGES.values():
        for name in names:
            if name.endswith(".js"):
                files[f"vendor/{folder}/{name}"] = "text/javascript"
    return files


def vendor_records() -> set[str]:
    """The files under vendor/ kept for people, not served: README.md and the LICENSEs (in
    the repository and the installed package beside the code they cover)."""
    records = {f"vendor/{README}"}
    for folder, names in PACKAGES.values():
        records |= {f"vendor/{folder}/{name}" for name in names if not name.endswith(".js")}
    return records


def locked_packages(lock_text: str) -> dict[str, tuple[str, str, str]]:
    """Each vendored package's (version, licence, integrity) as package-lock.json pins it."""
    try:
        entries = json.loads(lock_text)["packages"]
    except (ValueError, KeyError, TypeError) as error:
        raise SparkError(
            ErrorCode.INVALID_CONFIG, f"package-lock.json is unreadable: {error}"
        ) from error
    pinned = {}
    for package in PACKAGES:
        entry = entries.get(f"node_modules/{package}") if isinstance(entries, dict) else None
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("version", "integrity", "license")
        ):
            raise SparkError(
                ErrorCode.INVALID_CONFIG,
                f"package-lock.json pins no version, licence and integrity of {package}: "
                "run `npm install --package-lock-only` in node/explorer_deps",
            )
        pinned[package] = (entry["version"], entry["license"], entry["integrity"])
    return pinned


def readme_text(pinned: dict[str, tuple[str, str, str]]) -> str:
    rows = "".join(
        f"| {package} | {version} | {licence} | `{integrity}` | "
        f"{', '.join(PACKAGES[package][1])} |\n"
        for package, (version, licence, integrity) in pinned.items()
    )
    return (
        "# Vendored fallback crypto of the explorer\n\n"
        "Written by `make explorer-vendor` (node/explorer_vendor.py): do not edit. The files are\n"
        "copied unmodified from the npm packages pinned in node/explorer_deps/package-lock.json\n"
        "(`npm ci` checks each against its integrity hash). The page uses them only where the\n"
        "browser gives it no WebCrypto (node/explorer/crypto.js).\n\n"
        "| package | version | licence | integrity | files |\n"
        "| --- | --- | --- | --- | --- |\n" + rows
    )


def versions_js_text(pinned: dict[str, tuple[str, str, str]]) -> str:
    versions = {package: version for package, (version, _, _) in pinned.items()}
    return (
        "// Written by `make explorer-vendor` (node/explorer_vendor.py) from\n"
        "// node/explorer_deps/package-lock.json: the versions of the vendored packages.\n"
        f"export const VERSIONS = {json.dumps(versions, sort_keys=True)};\n"
    )


def npm_ci(work: Path) -> None:
    """`npm ci` of node/explorer_deps in `work` (a scratch folder)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SparkError(
            ErrorCode.UNAVAILABLE,
            "npm is not installed: the explorer's vendored crypto is built with `npm ci` "
            "(install Node.js and npm, e.g. `apt-get install npm`)",
        )
    for name in NPM_INPUTS:
        shutil.copyfile(DEPS_DIR / name, work / name)
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise SparkError(
            ErrorCode.UNAVAILABLE, f"`npm ci` failed ({done.returncode}): {done.stderr[-2000:]}"
        )


def build(output: Path) -> list[Path]:
    """Install the pinned packages and write vendor/ to `output`; returns the files written."""
    if output.exists() and not output.is_dir():
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"{output} is not a folder")
    pinned = locked_packages((DEPS_DIR / "package-lock.json").read_text())
    with tempfile.TemporaryDirectory(prefix="spark-explorer-vendor-") as scratch:
        work = Path(scratch)
        npm_ci(work)
        if output.exists():
            shutil.rmtree(output)
        output.mkdir(parents=True)
        written = []
        for package, (folder, names) in PACKAGES.items():
            installed = work / "node_modules" / package
            version = json.loads((installed / "package.json").read_text())["version"]
            if version != pinned[package][0]:
                raise SparkError(
                    ErrorCode.INTERNAL, f"npm installed {package} {version}, not the lock's"
                )
            (output / folder).mkdir()
            for name in names:
                shutil.copyfile(installed / name, output / folder / name)
                written.append(output / folder / name)
    (output / README).write_text(readme_text(pinned))
    (output / VERSIONS_JS).write_text(versions_js_text(pinned))
    return [*written, output / README, output / VERSIONS_JS]


def main() -> None:
    parser = argparse.ArgumentParser(description="vendor the explorer's fallback crypto")
    parser.add_argument("--output", type=Path, default=VENDOR_DIR)
    args = parser.parse_args()
    try:
        files = build(args.output)
    except SparkError as error:
        raise SystemExit(f"error: {error}") from None
    for file in files:
        print(file)


if __name__ == "__main__":
    main()
