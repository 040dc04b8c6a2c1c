"""The genesis file: parsing, validation errors naming the field, hashing, height-0 state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.ledger.genesis import (
    Genesis,
    apply_genesis,
    genesis_to_dict,
    genesis_to_json,
    make_genesis,
    parse_genesis,
)
from sparkchain.ledger.rules import MemoryState
from sparkchain.node.home import load_genesis
from tests.helpers.chain import bid_of, key, make_test_genesis


def _document(**changes: Any) -> dict[str, Any]:
    document = genesis_to_dict(make_test_genesis())
    document.update(changes)
    return document


def _parse(document: object) -> Genesis:
    return parse_genesis(json.dumps(document).encode(), "genesis.json")


def test_generated_genesis_parses_back_equal_with_the_same_hash() -> None:
    genesis = make_test_genesis()
    again = parse_genesis(genesis_to_json(genesis).encode(), "genesis.json")
    assert again == genesis
    assert again.genesis_hash == genesis.genesis_hash and len(genesis.genesis_hash) == 32
    assert genesis.validator_keys == [key(f"validator{i}").public_key for i in range(1, 5)]
    assert genesis.root_authorities == (bid_of("root"),)


def test_genesis_hash_ignores_layout_and_key_order() -> None:
    document = _document()
    reordered = dict(reversed(list(document.items())))
    compact = json.dumps(reordered, separators=(",", ":")).encode()
    assert parse_genesis(compact).genesis_hash == _parse(document).genesis_hash


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": "sparkchain-other"},
        {"genesis_time_ms": 1_764_000_000_001},
        {"root_authorities": []},
        {"prefixes": [{"prefix": "86", "owner": bid_of("acme")}]},
        {"validators": [{"name": "node1", "public_key": key("other").public_key.hex()}]},
    ],
    ids=["chain_id", "time", "root_authorities", "prefixes", "validators"],
)
def test_genesis_hash_changes_with_every_field(change: dict[str, Any]) -> None:
    assert _parse(_document(**change)).genesis_hash != make_test_genesis().genesis_hash


def test_validator_order_is_part_of_the_genesis() -> None:
    document = _document()
    document["validators"].reverse()
    assert _parse(document).genesis_hash != make_test_genesis().genesis_hash


BROKEN: list[tuple[str, Any, str]] = [
    ("top_level_list", [], "genesis.json: must be a JSON object, got list"),
    ("missing_chain_id", "drop:chain_id", "genesis.json: chain_id: missing"),
    ("unknown_field", {"validatorz": []}, "genesis.json: validatorz: unknown field"),
    ("empty_chain_id", {"chain_id": ""}, "genesis.json: chain_id: is empty"),
    ("chain_id_with_space", {"chain_id": "my chain"}, "genesis.json: chain_id: 'my chain'"),
    ("chain_id_too_long", {"chain_id": "c" * 65}, "genesis.json: chain_id: longer than 64"),
    ("time_as_text", {"genesis_time_ms": "1764"}, "genesis.json: genesis_time_ms: must be"),
    ("time_as_bool", {"genesis_time_ms": True}, "genesis.json: genesis_time_ms: must be"),
    ("time_negative", {"genesis_time_ms": -1}, "genesis.json: genesis_time_ms: must be"),
    ("no_validators", {"validators": []}, "genesis.json: validators: must list at least one"),
    ("validators_object", {"validators": {}}, "genesis.json: validators: must be a JSON list"),
    (
        "short_key",
        {"validators": [{"name": "a", "public_key": "ab" * 32}, {"name": "b", "public_key": "ab"}]},
        "genesis.json: validators[1].public_key: not 64 hex characters",
    ),
    (
        "key_not_text",
        {"validators": [{"name": "a", "public_key": 7}]},
        "genesis.json: validators[0].public_key: must be a string, got number",
    ),
    (
        "validator_without_name",
        {"validators": [{"public_key": "ab" * 32}]},
        "genesis.json: validators[0].name: missing",
    ),
    (
        "validator_extra_field",
        {"validators": [{"name": "a", "public_key": "ab" * 32, "power": 10}]},
        "genesis.json: validators[0].power: unknown field",
    ),
    (
        "same_key_twice",
        {
            "validators": [
                {"name": "a", "public_key": "ab" * 32},
                {"name": "b", "public_key": "AB" * 32},
            ]
        },
        "genesis.json: validators[1].public_key: is the key of an earlier validator",
    ),
    (
        "same_name_twice",
        {
            "validators": [
                {"name": "a", "public_key": "ab" * 32},
                {"name": "a", "public_key": "cd" * 32},
            ]
        },
        "genesis.json: validators[1].name: 'a' is used by an earlier validator",
    ),
    (
        "root_not_a_bid",
        {"root_authorities": ["did:bid:ef1"]},
        "genesis.json: root_authorities[0]: not a BID",
    ),
    (
        "root_twice",
        {"root_authorities": [bid_of("root"), bid_of("root")]},
        "genesis.json: root_authorities[1]: ",
    ),
    (
        "prefix_bad_syntax",
        {"prefixes": [{"prefix": "88..1", "owner": bid_of("acme")}]},
        "genesis.json: prefixes[0].prefix: prefix segment 2 is empty",
    ),
    (
        "prefix_owner_not_bid",
        {"prefixes": [{"prefix": "88", "owner": "acme"}]},
        "genesis.json: prefixes[0].owner: not a BID",
    ),
    (
        "prefix_twice_in_other_case",
        {
            "prefixes": [
                {"prefix": "ab", "owner": bid_of("a")},
                {"prefix": "AB", "owner": bid_of("a")},
            ]
        },
        "genesis.json: prefixes[1].prefix: AB is listed twice",
    ),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_genesis_error_names_file_and_field(change: Any, message: str) -> None:
    if isinstance(change, dict):
        document: Any = _document(**change)
    elif isinstance(change, str) and change.startswith("drop:"):
        document = _document()
        del document[change.removeprefix("drop:")]
    else:
        document = change
    with pytest.raises(SparkError) as caught:
        _parse(document)
    assert caught.value.code == ErrorCode.INVALID_GENESIS
    assert str(caught.value.message).startswith(message), caught.value.message


def test_genesis_that_is_not_json_names_line_and_column() -> None:
    with pytest.raises(SparkError) as caught:
        parse_genesis(b'{\n  "chain_id": "x",\n  oops\n}', "home/genesis.json")
    assert caught.value.code == ErrorCode.INVALID_GENESIS
    assert caught.value.message.startswith("home/genesis.json: not valid JSON")
    assert "line 3" in caught.value.message


def test_genesis_with_a_key_twice_is_rejected() -> None:
    with pytest.raises(SparkError) as caught:
        parse_genesis(b'{"chain_id": "a", "chain_id": "b"}')
    assert "'chain_id' appears twice" in caught.value.message


def test_genesis_that_is_not_utf8_is_rejected() -> None:
    with pytest.raises(SparkError) as caught:
        parse_genesis(b'{"chain_id": "\xff"}')
    assert caught.value.code == ErrorCode.INVALID_GENESIS


def test_genesis_with_an_integer_too_long_to_convert_is_invalid_genesis() -> None:
    # found by `make fuzz` (fuzz/regressions/genesis/): json raised a bare ValueError for an
    # integer of more than 4300 digits (sys.get_int_max_str_digits)
    with pytest.raises(SparkError) as caught:
        parse_genesis(b'{"genesis_time_ms": 1' + b"0" * 5000 + b"}", "home/genesis.json")
    assert caught.value.code == ErrorCode.INVALID_GENESIS
    assert caught.value.message.startswith("home/genesis.json: not valid JSON")
    assert "digits" in caught.value.message


def test_load_genesis_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(genesis_to_json(make_test_genesis()))
    assert load_genesis(path) == make_test_genesis()
    path.write_text("{}")
    with pytest.raises(SparkError) as caught:
        load_genesis(path)
    assert caught.value.message == f"{path}: chain_id: missing"
    with pytest.raises(SparkError) as caught:
        load_genesis(tmp_path / "absent.json")
    assert (
        caught.value.code == ErrorCode.INVALID_GENESIS
        and "absent.json: cannot read" in caught.value.message
    )


def test_make_genesis_validates_like_a_file() -> None:
    with pytest.raises(SparkError) as caught:
        make_genesis("dev", 1, [("node1", b"\x01" * 31)])
    assert caught.value.message == "genesis: validators[0].public_key: not 64 hex characters"


def test_apply_genesis_writes_prefixes_at_height_zero() -> None:
    genesis = make_test_genesis(prefixes=(("88", "acme"), ("86.100", "bob")))
    state = MemoryState()
    written = apply_genesis(state, genesis)
    assert [p.key for p in written] == ["88", "86.100"]
    prefix = state.get_prefix("86.100")
    assert prefix is not None
    assert (prefix.prefix, prefix.owner, prefix.created_height) == ("86.100", bid_of("bob"), 0)
    assert list(prefix.registrars) == [] and state.records == {}
