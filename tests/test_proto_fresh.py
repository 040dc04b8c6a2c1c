"""The committed generated protobuf code is exactly what `make proto` would write now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def test_generated_protobuf_code_is_fresh(tmp_path: Path) -> None:
    # Compiled through the sparkchain/proto link, as `make proto` does, so the generated
    # imports read `from sparkchain.proto import ...`.
    protos = sorted(f"sparkchain/proto/{p.name}" for p in (REPO / "proto").glob("*.proto"))
    assert protos, "no .proto files found"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(REPO),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr

    fresh = {p.name: p.read_bytes() for p in (tmp_path / "sparkchain" / "proto").iterdir()}
    committed = {
        p.name: p.read_bytes()
        for p in (REPO / "proto").iterdir()
        if p.name.endswith(GENERATED_SUFFIXES)
    }
    regenerate = "run `make proto` and commit the result"
    missing = sorted(set(fresh) - set(committed))
    assert not missing, f"generated files missing from proto/: {missing}; {regenerate}"
    orphans = sorted(set(committed) - set(fresh))
    assert not orphans, f"proto/ holds generated files with no .proto: {orphans}"
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, (
        f"stale generated files: {', '.join('proto/' + s for s in stale)}; {regenerate}"
    )
