"""The import layers of docs/architecture.md hold (import-linter, contracts in pyproject.toml),
and the pure packages load no I/O library at run time either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# in a process of its own: import-linter reconfigures logging (dictConfig) in-process
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )


def test_import_contracts_are_kept() -> None:
    run = _lint_imports(REPO / "pyproject.toml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_checker_sees_the_imports_through_the_namespace_links(tmp_path: Path) -> None:
    # a negative control: node does import plyvel, so forbidding it must break the contract
    config = tmp_path / ".importlinter"
    config.write_text(
        "[importlinter]\nroot_package = sparkchain\ninclude_external_packages = True\n\n"
        "[importlinter:contract:control]\nname = control\ntype = forbidden\n"
        "source_modules = sparkchain.node\nforbidden_modules = plyvel\n"
    )
    run = _lint_imports(config)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "sparkchain.node is not allowed to import plyvel" in run.stdout


def _modules_loaded_by(statement: str) -> set[str]:
    probe = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(json.loads(run.stdout))


def test_importing_the_ledger_loads_no_network_storage_node_or_cli() -> None:
    loaded = _modules_loaded_by(
        "import sparkchain.ledger.rules, sparkchain.ledger.blocks, sparkchain.ledger.proof, "
        "sparkchain.ledger.genesis, sparkchain.ledger.smt"
    )
    assert "sparkchain.ledger.rules" in loaded  # the probe did import it
    for forbidden in ("grpc", "plyvel", "aiohttp", "asyncio", "sparkchain.node", "sparkchain.cli"):
        assert forbidden not in loaded, f"importing sparkchain.ledger loads {forbidden}"
