"""Validator-set changes on a real 4-validator testnet, through the CLI only (issue 13,
DESIGN §12): refusals with their codes, a fifth validator added (its node is not run, so
the four commit with 4 of 5), a validator removed, and `spark resolve --verify` against
the original genesis at every height across the changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.identifiers.keys import SigningKey
from tests.helpers.cluster import Cluster

pytestmark = pytest.mark.timeout(240)

NEW_KEY = SigningKey.from_seed(b"5" * 32)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("members"), validators=4).init()
    try:
        built.start()
        built.spark_ok(
            "prefix", "create", "88", "--key-file", built.root_key_file, "--node", _api(built)
        )
        yield built
    finally:
        built.stop_all()


def _api(cluster: Cluster, name: str = "node1") -> str:
    return cluster.nodes[name].api


def _key_file(cluster: Cluster, name: str) -> str:
    return str(cluster.nodes[name].home / "keys" / "validator.pem")


def _proposal(cluster: Cluster, path: Path, *change: str, signers: tuple[str, ...]) -> str:
    cluster.spark_ok("validators", "propose", *change, "--out", str(path), "--node", _api(cluster))
    for name in signers:
        cluster.spark_ok("validators", "sign", str(path), "--key-file", _key_file(cluster, name))
    return str(path)


def _members(cluster: Cluster, *height: str) -> list[str]:
    out = cluster.spark_ok("validators", "list", "--json", "--node", _api(cluster), *height)
    return [v["name"] for v in json.loads(out)["validators"]]


def _verified_everywhere(cluster: Cluster, identifier: str) -> None:
    for name in ("node1", "node2", "node3"):
        out = cluster.spark_ok(
            "resolve", identifier, "--verify", "--genesis", cluster.genesis_file,
            "--node", _api(cluster, name),
        )  # fmt: skip
        assert identifier in out


def _register(cluster: Cluster, identifier: str) -> int:
    out = cluster.spark_ok(
        "register", identifier, "--url", "https://example.com/x",
        "--key-file", cluster.root_key_file, "--node", _api(cluster), "--json",
    )  # fmt: skip
    return int(json.loads(out)["height"])


def test_changes_without_quorum_beyond_the_bound_or_duplicated_are_refused(
    net: Cluster, tmp_path: Path
) -> None:
    cases = [
        (("--remove", "node4"), ("node1", "node2"), "NO_QUORUM"),
        (
            ("--remove", "node3", "--remove", "node4"),
            ("node1", "node2", "node3"),
            "TOO_MANY_REMOVED",
        ),
        (
            ("--add", f"node5={_public_hex(net, 'node2')}@127.0.0.1:1"),
            ("node1", "node2", "node3"),
            "DUPLICATE_VALIDATOR",
        ),
    ]
    for number, (change, signers, code) in enumerate(cases):
        path = _proposal(net, tmp_path / f"p{number}.json", *change, signers=signers)
        result = net.spark("validators", "submit", path, "--node", _api(net))
        assert result.code != 0 and code in result.err, (code, result.err)
    assert _members(net) == ["node1", "node2", "node3", "node4"]


def _public_hex(cluster: Cluster, name: str) -> str:
    from sparkchain.node import keystore

    return keystore.read_key_file(Path(_key_file(cluster, name))).public_key.hex()


def test_add_a_fifth_then_remove_one_and_verify_at_every_height(
    net: Cluster, tmp_path: Path
) -> None:
    first = _register(net, "88/BEFORE")
    add = _proposal(
        net, tmp_path / "add.json", "--add", f"node5={NEW_KEY.public_key.hex()}@127.0.0.1:1",
        signers=("node1", "node2", "node3"),
    )  # fmt: skip
    out = net.spark_ok("validators", "submit", add, "--node", _api(net), "--json")
    decided = int(json.loads(out)["height"])
    assert _members(net, "--height", str(decided + 1)) == ["node1", "node2", "node3", "node4"]
    net.wait_height("node1", decided + 2, 30)
    assert _members(net, "--height", str(decided + 2))[-1] == "node5"
    # five validators, four running: 4 of 5 is a quorum, the chain goes on
    after_add = _register(net, "88/WITH-FIVE")
    assert after_add >= decided + 2
    _verified_everywhere(net, "88/BEFORE")  # a proof at a height the set of five signs
    remove = _proposal(
        net, tmp_path / "remove.json", "--remove", "node4",
        signers=("node1", "node2", "node3", "node4"),
    )  # fmt: skip
    out = net.spark_ok("validators", "submit", remove, "--node", _api(net), "--json")
    removed_at = int(json.loads(out)["height"])
    net.wait_height("node1", removed_at + 2, 30)
    assert _members(net) == ["node1", "node2", "node3", "node5"]
    last = _register(net, "88/WITHOUT-NODE4")
    assert last > removed_at + 1
    for identifier in ("88/BEFORE", "88/WITH-FIVE", "88/WITHOUT-NODE4"):
        _verified_everywhere(net, identifier)
    assert first < decided < removed_at < last
