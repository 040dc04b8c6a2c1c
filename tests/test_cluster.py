"""Four validator processes and an observer on loopback, started with `spark testnet` and
talked to only through the CLI and the public gRPC API (issue 5, "Tests").

One network serves the whole module (starting it is the slow part); every test begins from
"all validators up and in step", so each can also run alone.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node import keystore
from sparkchain.node.config import dial_address, load_config
from sparkchain.node.home import NodeHome
from sparkchain.node.mempool import wall_clock_ms as now_ms
from sparkchain.node.tls import PEER_SERVER_NAME
from sparkchain.proto import api_pb2
from tests.helpers.cluster import Cluster, until

pytestmark = pytest.mark.timeout(180)

PREFIX = "88"
OUTAGE_WAIT_MS = 1500  # how long a write waits while the network has no quorum


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("cluster"), validators=4, observers=1).init()
    try:
        built.start()
        built.spark_ok(
            "prefix", "create", PREFIX, "--key-file", built.root_key_file, "--node", api(built)
        )
        keystore.write_key_file(
            keystore.key_path("mallory", built.spark_home), SigningKey.from_seed(b"m" * 32)
        )
        yield built
    finally:
        built.stop_all()


@pytest.fixture
def net(cluster: Cluster) -> Cluster:
    """Every validator running and caught up with node1."""
    for name in cluster.validator_names():
        if cluster.height(name) < 0:
            cluster.start(name)
    cluster.wait_in_step(cluster.validator_names())
    return cluster


def api(cluster: Cluster, name: str = "node1") -> str:
    return cluster.nodes[name].api


def builder(cluster: Cluster, chain_id: str | None = None) -> TxBuilder:
    return TxBuilder(
        chain_id or cluster.genesis_chain_id(), cluster.root_key(), secrets.SystemRandom()
    )


def register_tx(cluster: Cluster, identifier: str, **kwargs: int) -> object:
    return builder(cluster).register(
        identifier, [value(1, "URL", f"https://example.com/{identifier}")], now_ms=now_ms()
    )


def resolve(cluster: Cluster, name: str, identifier: str) -> api_pb2.ResolveResponse:
    response: api_pb2.ResolveResponse = cluster.identifiers(name).Resolve(
        api_pb2.ResolveRequest(identifier=identifier), timeout=5
    )
    return response


def found_at(cluster: Cluster, name: str, identifier: str) -> bool:
    try:
        return resolve(cluster, name, identifier).record.identifier == identifier
    except grpc.RpcError:
        return False


# ---- the happy path ----


def test_register_through_node1_resolves_verified_through_node4(net: Cluster) -> None:
    out = net.spark_ok(
        "register",
        "88/C1",
        "--url",
        "https://example.com/c1",
        "--key-file",
        net.root_key_file,
        "--node",
        api(net, "node1"),
    )
    assert out.startswith("registered 88/C1 at height")
    out = net.spark_ok(
        "resolve", "88/C1", "--verify", "--genesis", net.genesis_file, "--node", api(net, "node4")
    )
    assert "https://example.com/c1" in out
    assert "verified at height" in out


# ---- crashes and outages ----


def test_commits_continue_with_a_validator_killed_and_it_catches_up(net: Cluster) -> None:
    net.kill9("node3")
    heights = [net.submit("node2", register_tx(net, f"88/K{i}")).height for i in range(4)]
    assert heights == sorted(heights) and heights[0] > 0

    net.restart("node3")
    top = net.height("node1")
    net.wait_height("node3", top)
    assert net.state_root_at("node3", top) == net.state_root_at("node1", top)
    assert all(found_at(net, "node3", f"88/K{i}") for i in range(4))


def test_two_validators_down_commit_nothing_and_lose_nothing(net: Cluster) -> None:
    acknowledged = net.submit("node1", register_tx(net, "88/BEFORE"))
    assert acknowledged.committed

    net.stop("node2")  # a clean shutdown
    net.kill9("node3")  # and a crash
    top = max(net.height("node1"), net.height("node4"))
    admitted = net.submit("node1", register_tx(net, "88/DURING1"), wait=False)
    with pytest.raises(grpc.RpcError) as waited:
        net.submit("node4", register_tx(net, "88/DURING2"), timeout_ms=OUTAGE_WAIT_MS)
    assert waited.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # two of four cannot form a quorum of three: no block was committed meanwhile
    assert max(net.height("node1"), net.height("node4")) == top

    net.restart("node2")
    net.restart("node3")
    for name in net.validator_names():
        until(lambda n=name: found_at(net, n, "88/DURING1"), 30, f"88/DURING1 on {name}")
        until(lambda n=name: found_at(net, n, "88/DURING2"), 30, f"88/DURING2 on {name}")
        assert found_at(net, name, "88/BEFORE")
    got = net.chain("node2").GetTx(api_pb2.GetTxRequest(tx_id=admitted.tx_id), timeout=5)
    assert got.height > top


# ---- observers ----


def test_observer_catches_up_and_serves_verified_resolves(net: Cluster) -> None:
    net.submit("node1", register_tx(net, "88/OBS1"))
    net.start("observer1")
    net.wait_height("observer1", net.height("node1"))
    out = net.spark_ok(
        "resolve",
        "88/OBS1",
        "--verify",
        "--genesis",
        net.genesis_file,
        "--node",
        api(net, "observer1"),
    )
    assert "verified at height" in out

    # it keeps following: a later registration shows up there too
    net.submit("node2", register_tx(net, "88/OBS2"))
    until(lambda: found_at(net, "observer1", "88/OBS2"), 30, "88/OBS2 on the observer")
    status = net.status("observer1")
    assert status.role == "observer" and status.validator == b""


def test_an_observer_forwards_writes_to_a_validator(net: Cluster) -> None:
    """Txs travel between validators only (DESIGN §11): a client writing through the
    observer gets a validator's answer, its tx commits, and a refusal keeps its code."""
    if net.height("observer1") < 0:
        net.start("observer1")
    observer = net.identifiers("observer1")
    tx = register_tx(net, "88/VIA-OBSERVER")
    answer = observer.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True), timeout=60)
    assert answer.committed and answer.height > 0
    assert resolve(net, "node2", "88/VIA-OBSERVER").record.identifier == "88/VIA-OBSERVER"

    streamed = [register_tx(net, f"88/VIA-OBS-STREAM-{i}") for i in range(3)]
    requests = iter([api_pb2.SubmitRequest(tx=t, wait_for_commit=True) for t in streamed])
    answers = list(observer.SubmitStream(requests, timeout=60))
    assert [a.committed for a in answers] == [True, True, True], answers
    assert [a.error_code for a in answers] == ["", "", ""]

    # a validator's refusal reaches the client unchanged, through the CLI too
    out = net.spark(
        "register",
        "88/VIA-OBSERVER",
        "--key-file",
        net.root_key_file,
        "--node",
        api(net, "observer1"),
    )
    assert out.code == 1, out
    assert "EXISTS" in out.err, out.err


# ---- errors a user can cause ----


def test_user_errors_through_the_cli_have_exit_codes_and_one_line_messages(
    net: Cluster, tmp_path: Path
) -> None:
    node1 = api(net, "node1")
    net.submit("node1", register_tx(net, "88/TAKEN"))
    other_genesis = tmp_path / "other-genesis.json"
    genesis = json.loads(Path(net.genesis_file).read_text())
    genesis["chain_id"] = "another-chain"
    other_genesis.write_text(json.dumps(genesis))
    root = ("--key-file", net.root_key_file, "--node", node1)
    cases = [
        (("resolve", "88/NOBODY", "--node", node1), 1, "NOT_FOUND"),
        (("register", "88/MINE", "--key", "mallory", "--node", node1), 1, "UNAUTHORIZED"),
        (("register", "88/TAKEN", *root), 1, "EXISTS"),
        (("register", "no-slash-here", *root), 1, "INVALID_IDENTIFIER"),
        (("register", "88/BIG", "--value", "DATA=" + "x" * 17_000, *root), 1, "TOO_LARGE"),
        (
            ("resolve", "88/TAKEN", "--verify", "--genesis", str(other_genesis), "--node", node1),
            1,
            "WRONG_CHAIN",
        ),
        (("resolve", "88/TAKEN", "--node", "127.0.0.1:1"), 3, "UNAVAILABLE"),
    ]
    for argv, exit_code, error_code in cases:
        result = net.spark(*argv)
        assert result.code == exit_code, (argv, result.err)
        assert result.err.startswith(f"error: {error_code}: "), (argv, result.err)
        assert len(result.err.strip().splitlines()) == 1, result.err


def test_forged_foreign_and_stale_txs_are_refused_with_their_codes(net: Cluster) -> None:
    good = register_tx(net, "88/FORGED")
    forged = type(good)()
    forged.CopyFrom(good)  # type: ignore[attr-defined]
    forged.signature = bytes([good.signature[0] ^ 1]) + good.signature[1:]  # type: ignore[attr-defined]
    foreign = builder(net, "another-chain").register("88/FOREIGN", now_ms=now_ms())
    stale = builder(net).register("88/STALE", now_ms=now_ms() - 3_600_000, lifetime_ms=60_000)
    for tx, error_code in ((forged, "BAD_SIGNATURE"), (foreign, "WRONG_CHAIN"), (stale, "EXPIRED")):
        with pytest.raises(grpc.RpcError) as refused:
            net.submit("node2", tx)  # type: ignore[arg-type]
        error = refused.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error_code
        assert error.details().startswith(f"{error_code}: ")  # type: ignore[attr-defined]
        metadata = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert metadata.get("spark-error-code") == error_code


def _channel_as_node1(net: Cluster, address: str, *, peer_port: bool) -> grpc.Channel:
    """A channel to an API port, or to a peer port with node1's TLS certificate."""
    if not peer_port:
        return grpc.insecure_channel(address)
    tls = NodeHome(net.nodes["node1"].home).peer_tls()
    options = [("grpc.ssl_target_name_override", PEER_SERVER_NAME)]
    return grpc.secure_channel(address, tls.channel_credentials(), options=options)


def test_the_peer_port_refuses_plaintext(net: Cluster) -> None:
    home = net.nodes["node2"].home
    p2p = dial_address(load_config(home / "config.toml").p2p.listen)
    with grpc.insecure_channel(p2p) as channel:
        call = channel.unary_unary("/spark.v1.Peer/GetBlocks")
        with pytest.raises(grpc.RpcError) as refused:
            call(b"", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_request_bytes_that_do_not_decode_are_invalid_argument_without_a_traceback(
    net: Cluster,
) -> None:
    home = net.nodes["node2"].home
    p2p = dial_address(load_config(home / "config.toml").p2p.listen)
    for address, method in (
        (api(net, "node2"), "/spark.v1.Chain/GetTx"),
        (api(net, "node2"), "/spark.v1.Identifiers/SubmitStream"),
        (p2p, "/spark.v1.Peer/Connect"),
        (p2p, "/spark.v1.Peer/GetBlocks"),
    ):
        with _channel_as_node1(net, address, peer_port=address == p2p) as channel:
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as refused:
                call(b"\xff\xff\xff\xff", timeout=10)
        error = refused.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, error.details())  # type: ignore[attr-defined]
        assert error.details().startswith(f"INVALID_ARGUMENT: {method}: ")  # type: ignore[attr-defined]
    assert "DecodeError" not in (home / "node.log").read_text(encoding="utf-8")
