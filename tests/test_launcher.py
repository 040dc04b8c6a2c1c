"""The launcher starts, watches and stops node processes by their homes.

These tests run `tests/helpers/fake_node.py`, a process that only answers Chain.Status,
so they check the process handling without the real node; tests/test_cli_setup.py starts
real nodes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node import launcher
from sparkchain.node.home import NodeHome, find_testnet_homes, init_home, init_testnet
from tests.helpers import fake_node

START_TIMEOUT_S = 20.0  # generous: a slow CI machine must not fail these tests


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[list[NodeHome]]:
    init_testnet(tmp_path, validators=2, observers=1)
    found = find_testnet_homes(tmp_path)
    yield found
    launcher.stop_nodes(found, grace_s=1.0)


def test_started_node_answers_and_stops(homes: list[NodeHome]) -> None:
    home = homes[0]
    answer = launcher.start_node(home, START_TIMEOUT_S, command=fake_node.command(home.root))
    assert answer.height == 7
    pid = launcher.running_pid(home)
    assert pid is not None
    assert int(home.pid_path.read_text()) == pid
    status = launcher.node_status(home)
    assert (status.name, status.role, status.pid, status.height, status.state) == (
        "node1",
        "validator",
        pid,
        7,
        "up",
    )
    assert "fake node for" in home.log_path.read_text()

    assert launcher.stop_node(home, grace_s=5.0)
    assert launcher.running_pid(home) is None
    assert not home.pid_path.exists()
    assert launcher.node_status(home).state == "down"
    assert not launcher.stop_node(home)  # stopping again is not an error


def test_start_nodes_waits_for_every_node(homes: list[NodeHome]) -> None:
    commands = {home.root: fake_node.command(home.root, "--height", "3") for home in homes}
    answers = launcher.start_nodes(homes, START_TIMEOUT_S, command_for=commands)
    assert sorted(answers) == sorted(home.root for home in homes)
    assert {answer.height for answer in answers.values()} == {3}
    assert [launcher.node_status(home).role for home in homes] == [
        "validator",
        "validator",
        "observer",
    ]
    stopped = launcher.stop_nodes(homes, grace_s=5.0)
    assert sorted(stopped) == sorted(home.root for home in homes)


def test_a_running_node_is_not_started_twice(homes: list[NodeHome]) -> None:
    home = homes[0]
    launcher.start_node(home, START_TIMEOUT_S, command=fake_node.command(home.root))
    with pytest.raises(SparkError) as caught:
        launcher.spawn_node(home, command=fake_node.command(home.root))
    assert caught.value.code is ErrorCode.EXISTS
    # start_nodes skips it and just waits for its answer
    answers = launcher.start_nodes([home], START_TIMEOUT_S)
    assert answers[home.root].height == 7


def test_a_node_ignoring_sigterm_is_killed_after_the_grace_period(
    homes: list[NodeHome],
) -> None:
    home = homes[0]
    command = fake_node.command(home.root, "--ignore-sigterm")
    launcher.start_node(home, START_TIMEOUT_S, command=command)
    pid = launcher.running_pid(home)
    assert pid is not None
    assert launcher.stop_node(home, grace_s=0.2)
    assert launcher.running_pid(home) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_node_that_exits_at_start_reports_its_code_and_log(homes: list[NodeHome]) -> None:
    home = homes[0]
    command = fake_node.command(home.root, "--exit-code", "3")
    with pytest.raises(SparkError) as caught:
        launcher.start_node(home, START_TIMEOUT_S, command=command)
    assert caught.value.code is ErrorCode.UNAVAILABLE
    assert "exited with code 3" in caught.value.message
    assert "refusing to start" in caught.value.message
    assert not home.pid_path.exists()


def test_a_node_that_never_answers_times_out(homes: list[NodeHome]) -> None:
    home = homes[0]
    command = fake_node.command(home.root, "--never-serve")
    with pytest.raises(SparkError) as caught:
        launcher.start_node(home, timeout_s=0.5, command=command)
    assert caught.value.code is ErrorCode.TIMEOUT
    assert str(home.log_path) in caught.value.message
    assert launcher.running_pid(home) is not None  # left running for the caller to inspect


def test_a_stale_pid_file_never_signals_another_process(homes: list[NodeHome]) -> None:
    home = homes[0]
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        home.pid_path.write_text(f"{bystander.pid}\n")
        assert launcher.running_pid(home) is None
        assert not launcher.stop_node(home, grace_s=0.1)
        assert bystander.poll() is None
        assert not home.pid_path.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_init_force_refuses_while_the_node_runs(tmp_path: Path) -> None:
    init_testnet(tmp_path / "ports", validators=1)  # free ports for the single home
    api = NodeHome(tmp_path / "ports" / "node1").config().api.listen
    init_home(tmp_path / "home", api_listen=api, p2p_listen="127.0.0.1:1")
    home = NodeHome(tmp_path / "home")
    launcher.start_node(home, START_TIMEOUT_S, command=fake_node.command(home.root))
    try:
        with pytest.raises(SparkError) as caught:
            init_home(home.root, force=True)
        assert caught.value.code is ErrorCode.EXISTS
        assert "running" in caught.value.message
    finally:
        launcher.stop_node(home, grace_s=5.0)


def test_node_command_runs_the_node_package_on_an_absolute_home(tmp_path: Path) -> None:
    command = launcher.node_command(Path("relative/home"), "debug")
    assert command[:3] == [sys.executable, "-m", "sparkchain.node"]
    assert Path(command[command.index("--home") + 1]).is_absolute()
    assert command[-2:] == ["--log-level", "debug"]
