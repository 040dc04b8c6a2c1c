"""National cryptography on real processes (issue 16 part 3): a testnet made with
`spark testnet init --hash sm3`, an SM2 account registering through the CLI, and its proofs
checked by `spark resolve --verify` and by `spark verify` on an exported bundle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.identifiers.hashing import sm3
from sparkchain.proto import api_pb2
from tests.helpers.cluster import Cluster

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def sm3_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("sm3"), validators=2, hash_algorithm="sm3").init()
    try:
        built.start()
        yield built
    finally:
        built.stop_all()


def test_sm2_account_registers_resolves_and_verifies_on_an_sm3_testnet(
    sm3_net: Cluster, tmp_path: Path
) -> None:
    net = sm3_net
    genesis = json.loads(Path(net.genesis_file).read_text(encoding="utf-8"))
    assert genesis["hash"] == "sm3"
    node1, node2 = net.nodes["node1"].api, net.nodes["node2"].api

    alice = json.loads(net.spark_ok("keys", "new", "alice", "--algorithm", "sm2", "--json"))
    assert alice["algorithm"] == "sm2" and alice["bid"].startswith("did:bid:zf")
    assert len(bytes.fromhex(alice["public_key"])) == 65
    # the root authority (Ed25519) gives prefix 88 to the SM2 account, which registers
    net.spark_ok(
        "prefix", "create", "88", "--owner", alice["bid"],
        "--key-file", net.root_key_file, "--node", node1,
    )  # fmt: skip
    net.spark_ok(
        "register", "88/SN-0001", "--url", "https://example.com/sn-1", "--key", "alice",
        "--node", node1,
    )  # fmt: skip

    resolved = json.loads(net.spark_ok("resolve", "88/sn-0001", "--json", "--node", node2))
    assert resolved["owner"] == alice["bid"]

    verified = net.spark(
        "resolve", "88/SN-0001", "--verify", "--genesis", net.genesis_file, "--node", node2
    )
    assert verified.code == 0, verified.err
    assert "verified at height" in verified.out and "https://example.com/sn-1" in verified.out

    exported = tmp_path / "sn-1.json"
    net.spark_ok(
        "resolve", "88/SN-0001", "--export", str(exported),
        "--genesis", net.genesis_file, "--node", node2,
    )  # fmt: skip
    checked = net.spark("verify", str(exported), "--genesis", net.genesis_file)
    assert checked.code == 0, checked.err
    assert "verified at height" in checked.out and "by 2 of 2 validators" in checked.out

    # the certified block hashes are SM3 of the header bytes, as the genesis chose
    height = json.loads(exported.read_text(encoding="utf-8"))["header"]["view"]["height"]
    block = net.chain("node1").GetBlock(api_pb2.GetBlockRequest(height=height), timeout=10)
    assert block.block_hash == sm3(block.block.header)

    # a genesis that says nothing of the hash is another chain: the bundle is refused
    plain = dict(genesis)
    del plain["hash"]
    other = tmp_path / "sha256-genesis.json"
    other.write_text(json.dumps(plain), encoding="utf-8")
    refused = net.spark("verify", str(exported), "--genesis", str(other))
    assert refused.code == 1 and "GENESIS_MISMATCH" in refused.err + refused.out
