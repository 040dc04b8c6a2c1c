"""`spark init`, `spark node start`, `spark testnet ...` as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.cli.main import main
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.node import keystore, launcher
from sparkchain.node.home import NodeHome, find_testnet_homes, free_loopback_ports
from tests.helpers.cli import spark

pytestmark = pytest.mark.usefixtures("spark_home")  # every test: a SPARK_HOME of its own

START_TIMEOUT_S = "60"


def test_init_writes_a_home_and_says_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = spark(capsys, "init", "--home", str(tmp_path / "h"), "--chain-id", "acme")
    assert code == 0
    home = NodeHome(tmp_path / "h")
    for path in (home.config_path, home.genesis_path, home.validator_key_path, home.root_key_path):
        assert str(path) in out
    assert f"spark node start --home {home.root}" in out
    genesis = home.genesis()
    assert genesis.chain_id == "acme"
    root_bid = bid_from_public_key(keystore.read_key_file(home.root_key_path).public_key)
    assert genesis.root_authorities == (root_bid,)
    assert root_bid in out


def test_init_json_lists_keys_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = spark(capsys, "init", "--home", str(tmp_path), "--json")
    assert code == 0
    summary = json.loads(out)
    home = NodeHome(tmp_path)
    assert summary["validator_public_key"] == home.genesis().validators[0].public_key.hex()
    assert summary["root_authority"] == home.genesis().root_authorities[0]
    assert sorted(summary["files"]) == sorted(
        str(p)
        for p in (
            home.config_path,
            home.genesis_path,
            home.validator_key_path,
            home.root_key_path,
            home.file("keys/tls-ca.pem"),
            home.file("keys/tls-cert.pem"),
            home.file("keys/tls-key.pem"),
            home.tls_ca_key_path,
        )
    )


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert spark(capsys, "init", "--home", str(tmp_path))[0] == 0
    genesis_before = NodeHome(tmp_path).genesis_path.read_bytes()
    code, out, err = spark(capsys, "init", "--home", str(tmp_path))
    assert code == 1
    assert out == ""
    assert err.startswith("error: EXISTS: ") and err.count("\n") == 1
    assert "--force" in err
    assert NodeHome(tmp_path).genesis_path.read_bytes() == genesis_before
    assert spark(capsys, "init", "--home", str(tmp_path), "--force")[0] == 0
    assert NodeHome(tmp_path).genesis_path.read_bytes() != genesis_before


def test_node_start_without_home_creates_the_dev_chain_once(
    spark_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[Path, str | None]] = []
    state_syncs: list[bool] = []

    def fake_run_home(home: NodeHome, log_level: str | None, *, state_sync: bool) -> int:
        started.append((home.root, log_level))
        state_syncs.append(state_sync)
        return 0

    monkeypatch.setattr("sparkchain.node.__main__.run_home", fake_run_home)
    code, out, _ = spark(capsys, "node", "start", "--log-level", "debug")
    assert code == 0
    assert started == [(spark_home / "dev", "debug")]
    assert "created the development chain sparkchain-dev" in out
    dev_key = keystore.read_key_file(spark_home / "keys" / "dev.pem")
    genesis = NodeHome(spark_home / "dev").genesis()
    assert genesis.prefixes[0].prefix == "88"
    assert genesis.prefixes[0].owner == bid_from_public_key(dev_key.public_key)

    code, out, _ = spark(capsys, "node", "start")
    assert code == 0
    assert out == ""  # already there: nothing created
    assert started[1] == (spark_home / "dev", None)
    assert keystore.read_key_file(spark_home / "keys" / "dev.pem").public_key == dev_key.public_key
    assert spark(capsys, "node", "start", "--state-sync")[0] == 0
    assert state_syncs == [False, False, True]


def test_node_start_on_a_missing_home_names_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = spark(capsys, "node", "start", "--home", str(tmp_path / "nowhere"))
    assert code == 1
    assert "not a node home" in err and "spark init --home" in err


def test_python_m_node_reports_a_bad_config_by_file_and_field(tmp_path: Path) -> None:
    spark_init = [sys.executable, "-m", "sparkchain.cli.main", "init", "--home", str(tmp_path)]
    subprocess.run(spark_init, check=True, capture_output=True)
    config = NodeHome(tmp_path).config_path
    config.write_text(config.read_text().replace('role = "validator"', 'role = "boss"'))
    result = subprocess.run(
        [sys.executable, "-m", "sparkchain.node", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"{config}: node.role: 'boss' is not one of" in result.stderr


def test_testnet_init_then_status_shows_every_node_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(tmp_path / "tn")
    code, out, _ = spark(
        capsys, "testnet", "init", "--dir", directory, "--validators", "4", "--observers", "1",
        "--json",
    )  # fmt: skip
    assert code == 0
    written = json.loads(out)
    names = ["node1", "node2", "node3", "node4", "observer1"]
    assert [node["name"] for node in written["nodes"]] == names
    assert (tmp_path / "tn" / "keys" / "root.pem").is_file()

    code, out, _ = spark(capsys, "testnet", "status", "--dir", directory, "--json")
    assert code == 0
    statuses = json.loads(out)
    assert [(s["name"], s["role"], s["pid"], s["height"], s["state"]) for s in statuses] == [
        (name, "observer" if name.startswith("observer") else "validator", None, None, "down")
        for name in names
    ]
    assert [s["address"] for s in statuses] == [node["api"] for node in written["nodes"]]

    code, out, _ = spark(capsys, "testnet", "status", "--dir", directory)
    assert code == 0
    assert out.count("down") == 5


def test_testnet_init_picks_a_new_chain_id_unless_given_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-created testnet is a new chain: with one fixed id, `spark resolve --verify`
    refused it against the genesis pinned (by chain id) for the testnet before."""
    chain_ids = []
    for name in ("first", "second"):
        directory = tmp_path / name
        init = ("testnet", "init", "--dir", str(directory), "--validators", "1", "--json")
        code, out, _ = spark(capsys, *init)
        assert code == 0
        chain_id = json.loads(out)["chain_id"]
        assert NodeHome(directory / "node1").genesis().chain_id == chain_id
        chain_ids.append(chain_id)
    assert chain_ids[0] != chain_ids[1]
    assert all(re.fullmatch(r"sparkchain-testnet-[0-9a-f]{8}", c) for c in chain_ids)

    directory = tmp_path / "named"
    init = ("testnet", "init", "--dir", str(directory), "--validators", "1")
    code, out, _ = spark(capsys, *init, "--chain-id", "acme-net", "--json")
    assert code == 0
    assert json.loads(out)["chain_id"] == "acme-net"
    assert NodeHome(directory / "node1").genesis().chain_id == "acme-net"


def test_testnet_commands_name_an_unknown_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert spark(capsys, "testnet", "init", "--dir", str(tmp_path), "--validators", "1")[0] == 0
    for action in ("start", "stop"):
        code, _, err = spark(capsys, "testnet", action, "--dir", str(tmp_path), "--node", "n9")
        assert code == 1
        assert "no node 'n9'" in err and "node1" in err


def test_testnet_init_refuses_a_used_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert spark(capsys, "testnet", "init", "--dir", str(tmp_path), "--validators", "2")[0] == 0
    code, _, err = spark(capsys, "testnet", "init", "--dir", str(tmp_path), "--validators", "2")
    assert code == 1 and "not empty" in err


# ---------------------------------------------------------------- with real node processes


@pytest.fixture
def testnet_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "tn"
    yield directory
    if directory.exists():
        launcher.stop_nodes(find_testnet_homes(directory), grace_s=5.0)


def test_testnet_start_status_stop_with_real_nodes(
    testnet_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(testnet_dir)
    init = ("testnet", "init", "--dir", directory, "--validators", "4", "--observers", "1")
    assert spark(capsys, *init)[0] == 0
    code, out, err = spark(capsys, "testnet", "start", "--dir", directory, "--timeout", "60")
    assert code == 0, err
    assert out.count(": up (pid") == 5

    code, out, _ = spark(capsys, "testnet", "status", "--dir", directory, "--json")
    statuses = json.loads(out)
    assert all(s["state"] == "up" and isinstance(s["pid"], int) for s in statuses)
    assert all(isinstance(s["height"], int) for s in statuses)

    code, out, _ = spark(capsys, "testnet", "stop", "--dir", directory, "--node", "node2")
    assert code == 0 and "node2: stopped" in out
    code, out, _ = spark(capsys, "testnet", "status", "--dir", directory, "--json")
    states = {s["name"]: s["state"] for s in json.loads(out)}
    assert states["node2"] == "down" and states["node1"] == "up"

    code, out, _ = spark(capsys, "testnet", "start", "--dir", directory, "--node", "node2")
    assert code == 0 and "node2: up" in out
    assert spark(capsys, "testnet", "stop", "--dir", directory)[0] == 0
    code, out, _ = spark(capsys, "testnet", "status", "--dir", directory, "--json")
    assert {s["state"] for s in json.loads(out)} == {"down"}


def test_an_init_home_runs_and_reports_its_chain(tmp_path: Path) -> None:
    api_port, p2p_port = free_loopback_ports(2)
    home = NodeHome(tmp_path / "home")
    init = ["init", "--home", str(home.root), "--chain-id", "acme"]
    init += ["--api-listen", f"127.0.0.1:{api_port}", "--p2p-listen", f"127.0.0.1:{p2p_port}"]
    assert main(init) == 0
    try:
        answer = launcher.start_node(home, timeout_s=float(START_TIMEOUT_S))
        assert answer.chain_id == "acme"
        assert answer.role == "validator"
    finally:
        launcher.stop_node(home)
