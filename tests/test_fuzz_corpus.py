"""The fuzz targets (fuzz/, `make fuzz`) do not rot: every committed seed and every input
that once crashed a decoder (fuzz/regressions/) replays to a return or a SparkError, the
valid seeds get past decoding, and both engines of the driver run and report crashes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.__main__ import CORPUS, REGRESSIONS, seed_folders
from fuzz.fallback import fuzz_with_hypothesis
from fuzz.peer_stream import _Harness, frames
from fuzz.seeds import peer_streams
from fuzz.targets import TARGETS, Target
from sparkchain.identifiers.errors import SparkError
from sparkchain.proto import peer_pb2

ROOT = Path(__file__).resolve().parent.parent


def committed_inputs(name: str) -> list[Path]:
    return [path for folder in seed_folders(name) for path in sorted(folder.iterdir())]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_committed_input_returns_or_raises_a_typed_error(name: str) -> None:
    run = TARGETS[name].load()
    accepted = 0
    for path in committed_inputs(name):
        try:
            run(path.read_bytes())
            accepted += 1
        except SparkError:
            pass
        except Exception as exc:
            pytest.fail(f"{path.relative_to(ROOT)} crashes {name}: {exc!r}")
    # a target whose every seed is refused would fuzz only its first check
    assert accepted > 0, f"no seed of {name} gets past the decoder"


def test_every_target_has_seeds_and_regressions_name_a_target() -> None:
    assert {p.name for p in CORPUS.iterdir()} == set(TARGETS)
    assert all(len(committed_inputs(name)) >= 3 for name in TARGETS)
    assert {p.name for p in REGRESSIONS.iterdir()} <= set(TARGETS)


def test_peer_stream_seed_decides_the_next_height_in_the_core() -> None:
    # the harness's core really decides from the seed's proposal and votes, so mutations
    # of it explore the core beyond signature checks
    harness = _Harness()
    for raw in frames(peer_streams()[0]):
        harness.message(peer_pb2.PeerMessage.FromString(raw))
    assert harness.decided == 2
    assert harness.core.height == 3


def test_hypothesis_engine_reports_the_input_that_crashes() -> None:
    target = Target("oid", "fuzz.text_targets:oid_text", 16, (), "")
    executions, crashing, _ = fuzz_with_hypothesis(target, [b"1.2.3"], 1.0)
    assert executions > 0 and crashing is None
    broken = Target("broken", "tests.test_fuzz_corpus:_crash_on_x", 16, (), "")
    _, crashing, error = fuzz_with_hypothesis(broken, [b"abx"], 30.0)
    assert crashing is not None and b"x" in crashing
    assert "IndexError" in error


def _crash_on_x(data: bytes) -> None:
    if b"x" in data:
        raise IndexError("a decoder bug")


@pytest.mark.timeout(600)
def test_make_fuzz_runs_one_target_under_atheris_and_counts_executions() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fuzz"],
        cwd=ROOT,
        env={**os.environ, "FUZZ_SECONDS": "2", "FUZZ_TARGETS": "oid"},
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("oid "))
    assert int(line.split()[1]) > 0
