"""Running the `spark` command line in-process, as a user would from a shell."""

from __future__ import annotations

import pytest

from sparkchain.cli.main import main


def spark(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`spark ARGV`: its exit code, and what it wrote to stdout and stderr (that run's
    output only: anything captured before is dropped)."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
