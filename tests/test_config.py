"""config.toml: reading into NodeConfig, writing it back, and errors that name file and field."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers import limits
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.config import (
    ConsensusConfig,
    Gs1Config,
    HttpConfig,
    MempoolConfig,
    NodeConfig,
    SnapshotsConfig,
    StorageConfig,
    config_to_toml,
    dial_address,
    format_toml,
    load_config,
    parse_config,
    split_address,
    write_config,
)
from sparkchain.node.home import init_testnet, node_config

MINIMAL = """
[node]
name = "node1"
role = "validator"

[api]
listen = "127.0.0.1:7100"

[p2p]
listen = "127.0.0.1:7200"
"""


def test_minimal_config_takes_defaults_for_consensus_and_mempool() -> None:
    config = parse_config(MINIMAL)
    assert config.node.name == "node1"
    assert config.node.is_validator
    assert config.node.log_level == "info"
    assert config.p2p.peers == () and config.p2p.observers == ()
    assert config.consensus.propose_timeout_ms == limits.DEFAULT_PROPOSE_TIMEOUT_MS
    assert config.mempool.max_txs == limits.DEFAULT_MEMPOOL_MAX_TXS


def test_every_field_round_trips_through_the_writer(tmp_path: Path) -> None:
    config = dataclasses.replace(
        node_config(
            "observer-7",
            "observer",
            "[::1]:9100",
            "0.0.0.0:9200",
            peers=["10.0.0.1:7200", "[fe80::1]:7201"],
            observers=["ab" * 32, "01" * 32],
        ),
        consensus=ConsensusConfig(
            propose_timeout_ms=3,
            prevote_timeout_ms=4,
            precommit_timeout_ms=5,
            timeout_delta_ms=6,
            block_interval_ms=0,
            empty_block_interval_ms=7,
            max_block_txs=8,
            max_block_bytes=9,
        ),
        mempool=MempoolConfig(max_txs=10, max_bytes=11),
        http=HttpConfig(listen="0.0.0.0:9300", max_connections=12),
        gs1=Gs1Config(prefixes=("88.608", "99")),
        storage=StorageConfig(block_cache_mb=13, tree_cache_nodes=14),
    )
    path = tmp_path / "config.toml"
    write_config(path, config)
    assert load_config(path) == config
    assert not path.with_name("config.toml.tmp").exists()


def test_written_config_is_plain_toml_with_one_table_per_section() -> None:
    document = tomllib.loads(config_to_toml(node_config("n", "validator", "h:1", "h:2")))
    assert set(document) == {
        "node", "api", "p2p", "consensus", "mempool", "http", "gs1", "ledger", "storage",
        "snapshots"
    }  # fmt: skip
    assert document["storage"] == {
        "block_cache_mb": limits.DEFAULT_BLOCK_CACHE_MB,
        "tree_cache_nodes": limits.DEFAULT_TREE_CACHE_NODES,
    }
    assert document["p2p"]["peers"] == []
    # every written home's GS1 resolver searches 88.608 (DESIGN §10)
    assert document["gs1"] == {"prefixes": ["88.608"]}


def test_snapshots_default_to_every_1000_blocks_keep_two_and_no_state_sync() -> None:
    assert parse_config(MINIMAL).snapshots == SnapshotsConfig(1000, 2, state_sync=False)
    chosen = parse_config(MINIMAL + "[snapshots]\ninterval = 0\nkeep = 5\nstate_sync = true\n")
    assert chosen.snapshots == SnapshotsConfig(0, 5, state_sync=True)


def test_the_gs1_resolver_searches_no_prefix_without_a_gs1_section() -> None:
    assert parse_config(MINIMAL).gs1 == Gs1Config(prefixes=())
    listed = parse_config(MINIMAL + '[gs1]\nprefixes = ["88.608", "88.999.1"]\n')
    assert listed.gs1.prefixes == ("88.608", "88.999.1")


def test_the_http_gateway_is_off_without_an_http_section_or_with_an_empty_listen() -> None:
    assert parse_config(MINIMAL).http == HttpConfig(listen="")
    assert parse_config(MINIMAL + '[http]\nlisten = ""\n').http.listen == ""
    on = parse_config(MINIMAL + '[http]\nlisten = "127.0.0.1:7300"\n')
    assert on.http == HttpConfig("127.0.0.1:7300", limits.DEFAULT_HTTP_MAX_CONNECTIONS)


toml_scalars = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.lists(st.text(max_size=10), max_size=4),
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.dictionaries(st.text(max_size=12), toml_scalars, max_size=5),
        max_size=4,
    )
)
def test_formatter_round_trips_any_strings_numbers_and_lists(tables: dict[str, dict]) -> None:  # type: ignore[type-arg]
    # control characters, quotes, backslashes and DEL must all be escaped
    assert tomllib.loads(format_toml(tables)) == tables


def test_formatter_escapes_characters_toml_forbids_raw() -> None:
    text = format_toml({"t": {"k": 'a"b\\c\nd\te\x00f\x7fg\u00e9'}})
    assert "\x00" not in text and "\x7f" not in text
    assert tomllib.loads(text) == {"t": {"k": 'a"b\\c\nd\te\x00f\x7fg\u00e9'}}


def _replace_line(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (_replace_line('name = "node1"\n', ""), "node.name", "missing"),
        (_replace_line('name = "node1"', 'name = "no spaces"'), "node.name", "letters"),
        (_replace_line('role = "validator"', 'role = "leader"'), "node.role", "not one of"),
        (MINIMAL + "\n", None, None),  # control: valid
        (_replace_line('role = "validator"', "role = 1"), "node.role", "must be a string"),
        (MINIMAL.replace("[api]", '[node.extra]\nx = 1\n[api]'), "node.extra", "unknown key"),
        (_replace_line('listen = "127.0.0.1:7100"', 'listen = "localhost"'), "api.listen",
         "not host:port"),
        (_replace_line('listen = "127.0.0.1:7100"', 'listen = "h:70000"'), "api.listen",
         "65535"),
        (_replace_line('listen = "127.0.0.1:7100"', 'listen = "::1:7100"'), "api.listen",
         "brackets"),
        (_replace_line('listen = "127.0.0.1:7100"', 'listen = "127.0.0.1:7200"'), "p2p.listen",
         "differ"),
        (MINIMAL + 'peers = ["a:1", "b"]\n', "p2p.peers[1]", "not host:port"),
        (MINIMAL + 'peers = ["a:1", "a:1"]\n', "p2p.peers[1]", "twice"),
        (MINIMAL + 'peers = ["127.0.0.1:7200"]\n', "p2p.peers", "own address"),
        (MINIMAL + 'peers = "a:1"\n', "p2p.peers", "list"),
        (MINIMAL + "peers = [1]\n", "p2p.peers[0]", "must be a string"),
        (MINIMAL + f'observers = ["{"ab" * 32}", "{"AB" * 32}"]\n', "p2p.observers[1]", "twice"),
        (MINIMAL + f'observers = ["{"ab" * 31}"]\n', "p2p.observers[0]", "64 hex digits"),
        (MINIMAL + f'observers = ["{"xy" * 32}"]\n', "p2p.observers[0]", "64 hex digits"),
        (MINIMAL + "observers = [7]\n", "p2p.observers[0]", "must be a string"),
        (MINIMAL + f'observers = "{"ab" * 32}"\n', "p2p.observers", "list of public keys"),
        (MINIMAL + "[consensus]\npropose_timout_ms = 5\n", "consensus.propose_timout_ms",
         "unknown key"),
        (MINIMAL + "[consensus]\nmax_block_txs = 0\n", "consensus.max_block_txs", "at least 1"),
        (MINIMAL + "[consensus]\nblock_interval_ms = -1\n", "consensus.block_interval_ms",
         "at least 0"),
        (MINIMAL + '[mempool]\nmax_txs = "5"\n', "mempool.max_txs", "must be an integer"),
        (MINIMAL + "[mempool]\nmax_bytes = true\n", "mempool.max_bytes", "must be an integer"),
        (MINIMAL + "[mempool]\nmax_bytes = 1.5\n", "mempool.max_bytes", "a float"),
        (MINIMAL + "[gateway]\nlisten = 1\n", "gateway", "unknown section"),
        (MINIMAL + '[http]\nlisten = "localhost"\n', "http.listen", "not host:port"),
        (MINIMAL + "[http]\nlisten = 7300\n", "http.listen", "must be a string"),
        (MINIMAL + '[http]\nlisten = "127.0.0.1:7100"\n', "http.listen", "must differ"),
        (MINIMAL + '[http]\nport = "1"\n', "http.port", "unknown key"),
        (MINIMAL + "[http]\nmax_connections = 0\n", "http.max_connections", "at least 1"),
        (MINIMAL + '[gs1]\nprefixes = "88.608"\n', "gs1.prefixes", "list of prefixes"),
        (MINIMAL + "[gs1]\nprefixes = [88]\n", "gs1.prefixes[0]", "must be a string"),
        (MINIMAL + '[gs1]\nprefixes = ["88..6"]\n', "gs1.prefixes[0]", "is empty"),
        (MINIMAL + '[gs1]\nprefixes = ["88/1"]\n', "gs1.prefixes[0]", "'/'"),
        (MINIMAL + '[gs1]\nprefixes = ["88.ab", "88.AB"]\n', "gs1.prefixes[1]", "twice"),
        (MINIMAL + '[gs1]\nprefix = ["88"]\n', "gs1.prefix", "unknown key"),
        (MINIMAL + "[storage]\nblock_cache_mb = 0\n", "storage.block_cache_mb", "at least 1"),
        (MINIMAL + '[storage]\ntree_cache_nodes = "1"\n', "storage.tree_cache_nodes",
         "must be an integer"),
        (MINIMAL + "[storage]\ntree_cache = 5\n", "storage.tree_cache", "unknown key"),
        (MINIMAL + "[snapshots]\ninterval = -1\n", "snapshots.interval", "at least 0"),
        (MINIMAL + "[snapshots]\nkeep = 0\n", "snapshots.keep", "at least 1"),
        (MINIMAL + '[snapshots]\nstate_sync = "yes"\n', "snapshots.state_sync", "true or false"),
        (MINIMAL + "[snapshots]\nevery = 5\n", "snapshots.every", "unknown key"),
        ('api = 5\n[node]\nname = "n"\n', "api", "must be a [table]"),
        ("[node\n", None, "not valid TOML"),
    ],
)  # fmt: skip
def test_config_errors_name_the_file_and_the_field(
    text: str, field: str | None, problem: str | None
) -> None:
    if problem is None:
        parse_config(text, "home/config.toml")
        return
    with pytest.raises(SparkError) as caught:
        parse_config(text, "home/config.toml")
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    prefix = f"home/config.toml: {field}: " if field else "home/config.toml: "
    assert caught.value.message.startswith(prefix), caught.value.message
    assert problem in caught.value.message


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SparkError) as caught:
        load_config(tmp_path / "config.toml")
    assert caught.value.message == f"{tmp_path / 'config.toml'}: file does not exist"
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    assert str(tmp_path) in caught.value.message


def test_config_is_frozen() -> None:
    config = parse_config(MINIMAL)
    assert isinstance(config, NodeConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.node.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:7100", ("127.0.0.1", 7100)), ("[::1]:1", ("::1", 1)), ("h:65535", ("h", 65535))],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["", "h", ":7100", "h:", "h:0", "h:x1", "::1:7100"])
def test_split_address_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        split_address(address)


def test_clients_dial_loopback_for_wildcard_listen_addresses() -> None:
    assert dial_address("0.0.0.0:7100") == "127.0.0.1:7100"
    assert dial_address("[::]:7100") == "[::1]:7100"
    assert dial_address("10.1.2.3:7100") == "10.1.2.3:7100"


# ---- every integer key has a maximum ----


def _with_table(table: str, key: str, value: str) -> str:
    return MINIMAL + f"\n[{table}]\n{key} = {value}\n"


@pytest.mark.parametrize(
    ("table", "key", "most"),
    [
        ("consensus", "propose_timeout_ms", limits.MAX_CONSENSUS_TIMEOUT_MS),
        ("consensus", "prevote_timeout_ms", limits.MAX_CONSENSUS_TIMEOUT_MS),
        ("consensus", "precommit_timeout_ms", limits.MAX_CONSENSUS_TIMEOUT_MS),
        ("consensus", "timeout_delta_ms", limits.MAX_CONSENSUS_TIMEOUT_MS),
        ("consensus", "block_interval_ms", limits.MAX_BLOCK_INTERVAL_MS),
        ("consensus", "empty_block_interval_ms", limits.MAX_EMPTY_BLOCK_INTERVAL_MS),
        ("consensus", "max_block_txs", limits.MAX_BLOCK_TXS),
        ("consensus", "max_block_bytes", limits.MAX_BLOCK_BYTES),
        ("mempool", "max_txs", limits.MAX_MEMPOOL_TXS),
        ("mempool", "max_bytes", limits.MAX_MEMPOOL_BYTES),
        ("http", "max_connections", limits.MAX_HTTP_CONNECTIONS),
        ("storage", "block_cache_mb", limits.MAX_BLOCK_CACHE_MB),
        ("storage", "tree_cache_nodes", limits.MAX_TREE_CACHE_NODES),
    ],
)
def test_every_integer_config_key_has_a_maximum(table: str, key: str, most: int) -> None:
    assert getattr(getattr(parse_config(_with_table(table, key, str(most))), table), key) == most
    for too_big in (most + 1, 10**20):
        with pytest.raises(SparkError) as caught:
            parse_config(_with_table(table, key, str(too_big)), "home/config.toml")
        assert caught.value.code is ErrorCode.INVALID_CONFIG
        assert caught.value.message == (
            f"home/config.toml: {table}.{key}: must be at most {most}, got {too_big}"
        )


def test_a_float_timeout_is_invalid_config_naming_the_field() -> None:
    with pytest.raises(SparkError) as caught:
        parse_config(_with_table("consensus", "propose_timeout_ms", "1e20"), "home/config.toml")
    assert caught.value.message == (
        "home/config.toml: consensus.propose_timeout_ms: must be an integer, got a float"
    )


def test_only_an_observer_forwards_writes() -> None:
    head = '[node]\nname = "n"\nrole = "{role}"\n'
    rest = (
        '[api]\nlisten = "127.0.0.1:1"\nsubmit_to = ["127.0.0.1:5"]\n'
        '[p2p]\nlisten = "127.0.0.1:2"\n'
    )
    observer = parse_config(head.format(role="observer") + rest)
    assert observer.api.submit_to == ("127.0.0.1:5",)
    with pytest.raises(SparkError) as caught:
        parse_config(head.format(role="validator") + rest)
    assert "api.submit_to: only an observer forwards writes" in caught.value.message


def test_a_testnet_observer_forwards_to_every_validator(tmp_path) -> None:
    written = init_testnet(tmp_path / "net", validators=2, observers=1)
    apis = [n.config.api.listen for n in written.nodes if n.config.node.role == "validator"]
    observer = next(n for n in written.nodes if n.config.node.role == "observer")
    assert list(observer.config.api.submit_to) == apis
    assert all(not n.config.api.submit_to for n in written.nodes if n is not observer)


# found by `make fuzz` (fuzz/regressions/config/): tomllib's RecursionError and the
# ValueError of an over-long integer escaped parse_config untyped
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x = " + "[" * 5000, "nested too deeply"),
        ("x = " + "{a = " * 5000, "nested too deeply"),
        (MINIMAL + "[consensus]\npropose_timeout_ms = 1" + "0" * 5000 + "\n", "digits"),
    ],
)
def test_config_too_deep_or_with_a_huge_integer_is_invalid_config(text: str, problem: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_config(text, "home/config.toml")
    assert caught.value.code == ErrorCode.INVALID_CONFIG
    assert caught.value.message.startswith("home/config.toml: not valid TOML")
    assert problem in caught.value.message
