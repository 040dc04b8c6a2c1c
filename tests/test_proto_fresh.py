"""The committed generated protobuf code is exactly what `make proto` would write now."""

from __future__ import annotations

from pathlib import Path

from sparkchain.proto.generate import GENERATED_SUFFIXES, generate, proto_sources

REPO = Path(__file__).resolve().parent.parent


def test_generated_protobuf_code_is_fresh(tmp_path: Path) -> None:
    # the command `make proto` runs (sparkchain.proto.generate), written elsewhere
    assert proto_sources(REPO), "no .proto files found"
    run = generate(tmp_path, REPO)
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
