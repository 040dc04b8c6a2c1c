"""The one protoc command that writes our generated code (proto/*_pb2*.py and .pyi).

    python -m sparkchain.proto.generate                # into the repository: `make proto`
    python -m sparkchain.proto.generate --out DIR      # elsewhere (DIR/sparkchain/proto/...)

tests/test_proto_fresh.py runs this same command into a temporary folder and compares, so
the committed files and the check cannot drift apart.

protoc writes the runtime modules (`_pb2.py` messages, `_pb2_grpc.py` services) and
mypy-protobuf's plugins write their typed stubs (`_pb2.pyi`, `_pb2_grpc.pyi`), which mypy
reads in their place. The service stubs serve both grpc and grpc.aio (the CLI calls the API
over a blocking channel, the node serves it on an aio server).

The .proto files are compiled through the sparkchain/proto link, so generated modules
import `sparkchain.proto.types_pb2` and descriptor names are unique in a process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
# mypy-protobuf's protoc plugins are console scripts installed beside this interpreter
PLUGINS = ("protoc-gen-mypy", "protoc-gen-mypy_grpc")


def proto_sources(repo: Path = REPO) -> list[str]:
    """The .proto files as protoc names them, relative to the repository root."""
    return sorted(f"sparkchain/proto/{p.name}" for p in (repo / "proto").glob("*.proto"))


def protoc_command(out_dir: Path, repo: Path = REPO) -> list[str]:
    scripts = Path(sysconfig.get_path("scripts"))
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I",
        str(repo),
        *(f"--plugin={name}={scripts / name}" for name in PLUGINS),
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        *proto_sources(repo),
    ]


def generate(out_dir: Path, repo: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Runs protoc from the repository root; the caller checks returncode (stderr says why)."""
    return subprocess.run(
        protoc_command(out_dir, repo), cwd=repo, capture_output=True, text=True, check=False
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkchain.proto.generate")
    parser.add_argument(
        "--out", type=Path, default=REPO, help="output root (default: the repository)"
    )
    args = parser.parse_args(argv)
    out_dir = args.out.resolve()  # protoc runs in the repository root
    out_dir.mkdir(parents=True, exist_ok=True)  # protoc makes the folders below it
    run = generate(out_dir)
    sys.stderr.write(run.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
