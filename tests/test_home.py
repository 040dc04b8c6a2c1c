"""Node homes: `init_home`, the development home and testnets write consistent files."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from cryptography import x509

from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.node import home as home_module
from sparkchain.node import keystore
from sparkchain.node.config import split_address
from sparkchain.node.home import (
    DEV_CHAIN_ID,
    NodeHome,
    dev_home_dir,
    ephemeral_port_range,
    find_testnet_homes,
    free_loopback_ports,
    init_dev_home,
    init_home,
    init_testnet,
)
from sparkchain.node.tls import node_key_in_certificate


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def public_key_in(path: Path) -> bytes:
    return keystore.read_key_file(path).public_key


def test_init_home_writes_a_single_validator_chain(tmp_path: Path) -> None:
    written = init_home(tmp_path / "home", chain_id="my-chain")
    home = NodeHome(tmp_path / "home")
    assert set(written.files) == {
        home.config_path,
        home.genesis_path,
        home.validator_key_path,
        home.root_key_path,
        home.root / "keys" / "tls-ca.pem",
        home.root / "keys" / "tls-cert.pem",
        home.root / "keys" / "tls-key.pem",
        home.tls_ca_key_path,
    }
    assert all(path.is_file() for path in written.files)
    assert mode(home.validator_key_path) == 0o600
    assert mode(home.root_key_path) == 0o600
    assert mode(home.root / "keys" / "tls-key.pem") == 0o600
    assert mode(home.tls_ca_key_path) == 0o600

    genesis = home.genesis()
    assert genesis.chain_id == "my-chain"
    assert [v.name for v in genesis.validators] == ["node1"]
    assert genesis.validators[0].public_key == public_key_in(home.validator_key_path)
    assert genesis.root_authorities == (bid_from_public_key(public_key_in(home.root_key_path)),)
    assert genesis.prefixes == ()  # the root authority owns nothing until it creates prefixes

    config = home.config()
    assert (config.node.name, config.node.role) == ("node1", "validator")
    assert config.api.listen == "127.0.0.1:7100"
    assert config.p2p.peers == ()
    assert home.node_key_path(config) == home.validator_key_path


def test_init_refuses_to_overwrite_an_existing_home(tmp_path: Path) -> None:
    first = init_home(tmp_path)
    before = {path: path.read_bytes() for path in first.files}
    with pytest.raises(SparkError) as caught:
        init_home(tmp_path)
    assert caught.value.code is ErrorCode.EXISTS
    assert "--force" in caught.value.message
    assert {path: path.read_bytes() for path in first.files} == before


def test_init_refuses_a_half_written_home(tmp_path: Path) -> None:
    # a leftover key alone (say from an interrupted init) still counts as a home
    init_home(tmp_path)
    NodeHome(tmp_path).config_path.unlink()
    with pytest.raises(SparkError, match=r"genesis\.json"):
        init_home(tmp_path)


def test_init_with_force_replaces_keys_and_deletes_chain_data(tmp_path: Path) -> None:
    first = init_home(tmp_path)
    home = first.home
    (home.ledger_dir).mkdir(parents=True)
    (home.ledger_dir / "CURRENT").write_text("old chain")
    (tmp_path / "notes.txt").write_text("not ours")
    second = init_home(tmp_path, force=True)
    assert second.node_public_key != first.node_public_key
    assert home.genesis().validators[0].public_key == second.node_public_key
    assert not home.ledger_dir.exists()
    assert (tmp_path / "notes.txt").read_text() == "not ours"


def test_dev_home_gives_prefix_88_to_the_dev_key(tmp_path: Path) -> None:
    written = init_dev_home(tmp_path)
    home = NodeHome(dev_home_dir(tmp_path))
    assert written.home == home
    dev_key_path = tmp_path / "keys" / "dev.pem"
    assert mode(dev_key_path) == 0o600
    assert mode(home.validator_key_path) == 0o600
    dev_bid = bid_from_public_key(public_key_in(dev_key_path))

    genesis = home.genesis()
    assert genesis.chain_id == DEV_CHAIN_ID
    assert [(p.prefix, p.owner) for p in genesis.prefixes] == [("88", dev_bid)]
    assert genesis.root_authorities == (dev_bid,)
    assert genesis.validator_keys == [public_key_in(home.validator_key_path)]
    assert home.config().api.listen == "127.0.0.1:7100"  # the CLI's default node
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev", "keys"]  # no leftovers


def test_dev_home_keeps_an_existing_dev_key(tmp_path: Path) -> None:
    dev_key_path = keystore.key_path("dev", tmp_path)
    existing = SigningKey.generate()
    keystore.write_key_file(dev_key_path, existing)
    init_dev_home(tmp_path)
    genesis = NodeHome(dev_home_dir(tmp_path)).genesis()
    assert genesis.prefixes[0].owner == bid_from_public_key(existing.public_key)
    with pytest.raises(SparkError) as caught:
        init_dev_home(tmp_path)
    assert caught.value.code is ErrorCode.EXISTS


def test_testnet_of_four_validators_and_one_observer(tmp_path: Path) -> None:
    written = init_testnet(tmp_path, validators=4, observers=1, chain_id="tn")
    homes = find_testnet_homes(tmp_path)
    names = ["node1", "node2", "node3", "node4", "observer1"]
    assert [home.root.name for home in homes] == names
    assert [node.home for node in written.nodes] == homes

    # one genesis, byte for byte, listing exactly the validators with their own keys
    genesis_bytes = {home.genesis_path.read_bytes() for home in homes}
    assert len(genesis_bytes) == 1
    genesis = homes[0].genesis()
    assert genesis.chain_id == "tn"
    assert [v.name for v in genesis.validators] == names[:4]
    for home, validator in zip(homes[:4], genesis.validators, strict=True):
        assert home.config().node.role == "validator"
        assert public_key_in(home.validator_key_path) == validator.public_key
        assert mode(home.validator_key_path) == 0o600
        assert not home.observer_key_path.exists()

    observer = homes[4]
    assert observer.config().node.role == "observer"
    assert not observer.validator_key_path.exists()
    assert mode(observer.observer_key_path) == 0o600
    assert public_key_in(observer.observer_key_path) not in genesis.validator_keys

    root_key = tmp_path / "keys" / "root.pem"
    assert mode(root_key) == 0o600
    assert genesis.root_authorities == (bid_from_public_key(public_key_in(root_key)),)
    assert written.root_authority == genesis.root_authorities[0]

    configs = [home.config() for home in homes]
    addresses = [c.api.listen for c in configs] + [c.p2p.listen for c in configs]
    assert len(set(addresses)) == 10
    assert all(split_address(a)[0] == "127.0.0.1" for a in addresses)
    every_p2p = {c.p2p.listen for c in configs}
    for config in configs:
        assert set(config.p2p.peers) == every_p2p - {config.p2p.listen}
        assert len(config.p2p.peers) == 4
    # the validators let the testnet's observer in (nodes refuse unlisted observers)
    observer_key = public_key_in(observer.observer_key_path).hex()
    assert [c.p2p.observers for c in configs] == [(observer_key,)] * 4 + [()]


def test_every_testnet_node_has_a_certificate_of_the_testnet_ca_bound_to_its_key(
    tmp_path: Path,
) -> None:
    init_testnet(tmp_path, validators=2, observers=1)
    ca_pem = (tmp_path / "keys" / "tls-ca.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(ca_pem)
    assert mode(tmp_path / "keys" / "tls-ca-key.pem") == 0o600
    for home in find_testnet_homes(tmp_path):
        tls = home.peer_tls()
        assert tls.ca_pem == ca_pem
        assert mode(home.root / "keys" / "tls-key.pem") == 0o600
        cert = x509.load_pem_x509_certificate(tls.cert_pem)
        cert.verify_directly_issued_by(ca)
        assert node_key_in_certificate(tls.cert_pem) == home.node_key().public_key


def test_testnet_with_base_ports_uses_consecutive_ports(tmp_path: Path) -> None:
    init_testnet(tmp_path, validators=3, base_api_port=21000, base_p2p_port=22000)
    configs = [home.config() for home in find_testnet_homes(tmp_path)]
    assert [c.api.listen for c in configs] == [f"127.0.0.1:{21000 + i}" for i in range(3)]
    assert [c.p2p.listen for c in configs] == [f"127.0.0.1:{22000 + i}" for i in range(3)]


def test_testnet_rejects_overlapping_base_ports_before_writing(tmp_path: Path) -> None:
    with pytest.raises(SparkError) as caught:
        init_testnet(tmp_path / "tn", validators=3, base_api_port=21000, base_p2p_port=21002)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert not (tmp_path / "tn").exists()


@pytest.mark.parametrize(("validators", "observers"), [(0, 1), (1, -1)])
def test_testnet_needs_a_validator(tmp_path: Path, validators: int, observers: int) -> None:
    with pytest.raises(SparkError) as caught:
        init_testnet(tmp_path, validators=validators, observers=observers)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_testnet_refuses_a_non_empty_directory_without_force(tmp_path: Path) -> None:
    first = init_testnet(tmp_path, validators=2)
    with pytest.raises(SparkError) as caught:
        init_testnet(tmp_path, validators=3)
    assert caught.value.code is ErrorCode.EXISTS
    assert len(find_testnet_homes(tmp_path)) == 2
    second = init_testnet(tmp_path, validators=1, force=True)
    assert [h.root.name for h in find_testnet_homes(tmp_path)] == ["node1"]
    assert second.root_authority != first.root_authority


def test_testnet_homes_orders_by_number_and_skips_other_directories(tmp_path: Path) -> None:
    init_testnet(tmp_path, validators=11, base_api_port=23000, base_p2p_port=24000)
    (tmp_path / "node99").mkdir()  # not a home: no config.toml
    names = [home.root.name for home in find_testnet_homes(tmp_path)]
    assert names == [f"node{i}" for i in range(1, 12)]


def test_testnet_homes_of_a_missing_or_empty_directory(tmp_path: Path) -> None:
    for directory in (tmp_path / "missing", tmp_path):
        with pytest.raises(SparkError) as caught:
            find_testnet_homes(directory)
        assert caught.value.code is ErrorCode.NOT_FOUND


def test_free_loopback_ports_are_distinct() -> None:
    ports = free_loopback_ports(20)
    assert len(set(ports)) == 20
    assert all(0 < port < 65536 for port in ports)


def test_free_loopback_ports_are_outside_the_ephemeral_range() -> None:
    # The chaos test once failed with ADDRESS_IN_USE: a node's http port, chosen by binding
    # port 0 at `testnet init`, had been given meanwhile as the source port of another
    # node's outgoing connection. The kernel gives source ports only from this range.
    low, high = ephemeral_port_range()
    ports = free_loopback_ports(50)
    assert not [port for port in ports if low <= port <= high]


def test_free_loopback_ports_skip_ports_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    block = _free_block(40)
    monkeypatch.setattr(home_module, "_PORT_POOL", (block[0], block[-1] + 1))
    held = []
    try:
        for port in block[:30]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", port))
            sock.listen()
            held.append(sock)
        assert sorted(free_loopback_ports(10)) == block[30:]
        with pytest.raises(SparkError) as caught:
            free_loopback_ports(11)
        assert caught.value.code is ErrorCode.UNAVAILABLE
        assert "only 10 of 11" in caught.value.message
    finally:
        for sock in held:
            sock.close()


def _free_block(size: int) -> list[int]:
    """`size` consecutive loopback ports that are free now (below the ephemeral range)."""
    for start in range(20000, 32000, size):
        sockets = []
        try:
            for port in range(start, start + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return list(range(start, start + size))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no block of free ports")
