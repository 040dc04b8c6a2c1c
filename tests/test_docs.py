"""docs/cli.md is what the CLI's parser says, whatever the machine that writes it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from sparkchain.cli import docs_gen
from sparkchain.cli.main import build_parser

CLI_REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    written = CLI_REFERENCE.read_text(encoding="utf-8") if CLI_REFERENCE.exists() else ""
    if written != docs_gen.render():
        pytest.fail(
            "docs/cli.md is stale: it no longer matches the spark argument parser. "
            "Run `make docs` and commit docs/cli.md."
        )


def test_cli_reference_ignores_terminal_width_home_and_spark_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain = docs_gen.render()
    monkeypatch.setenv("COLUMNS", "37")
    monkeypatch.setenv("HOME", str(tmp_path / "someone"))
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "spark-home"))
    monkeypatch.setenv("SPARK_NODE", "10.9.8.7:7777")
    assert docs_gen.render() == plain
    assert str(tmp_path) not in plain
    assert os.environ["SPARK_NODE"] == "10.9.8.7:7777"  # the caller's environment is back


def test_every_command_and_option_is_in_the_reference() -> None:
    page = docs_gen.render()
    for command in docs_gen.commands(build_parser()):
        assert f"`{command.name}`" in page
        for action in command.parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                assert f"`{action.option_strings[0]}" in page, (command.name, action.dest)


def test_a_default_from_the_environment_is_rendered_with_its_name() -> None:
    parser = argparse.ArgumentParser(prog="spark")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="a command with a home-dependent default")
    with docs_gen.neutral_environment():
        demo.add_argument("--keys", type=Path, default=Path.home() / ".spark" / "keys")
        demo.add_argument("--node", default=os.environ.get("SPARK_NODE", "127.0.0.1:7100"))
    page = docs_gen.render(parser)
    assert "Default: `~/.spark/keys`." in page
    assert "Default: `127.0.0.1:7100`." in page
    assert "spark demo [--keys KEYS] [--node NODE]" in page
