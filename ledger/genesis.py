"""The genesis file: chain id, validators, root authorities and initial prefixes.

    {
      "chain_id": "sparkchain-dev",
      "genesis_time_ms": 1764000000000,
      "validators": [{"name": "node1", "public_key": "<64 hex>"}],
      "root_authorities": ["did:bid:ef..."],
      "prefixes": [{"prefix": "88", "owner": "did:bid:ef..."}],
      "hash": "sha256"
    }

`hash` (optional, issue 16) chooses the chain's hash once and for all: "sha256" (the
default) or "sm3" (GB/T 32905). Tx ids, the tx root, block hashes, certificate and validator
set hashes, the state tree and the genesis hash itself all use it. A SHA-256 genesis leaves
the field out of its canonical form, so chains made before the choice existed keep their
genesis hash.

Every error names the file and the field path (`genesis.json: validators[1].public_key:
not 64 hex characters`). `genesis_hash` is the chain's hash of GENESIS_TAG and the canonical JSON
(sorted keys, no spaces, UTF-8) of the parsed content, so a re-indented file hashes the same
and any change of meaning does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkchain.identifiers.bid import parse_bid
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_prefix
from sparkchain.identifiers.hashing import HashAlgorithm, HashFunction, hash_function
from sparkchain.identifiers.limits import (
    MAX_CHAIN_ID_BYTES,
    MAX_VALIDATOR_NAME_CHARS,
    MAX_VALIDATORS,
)
from sparkchain.identifiers.tags import GENESIS_TAG
from sparkchain.ledger.rules_state import StateView
from sparkchain.proto import types_pb2 as pb

GENESIS_FILE_NAME = "genesis.json"
_CHAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_TOP_FIELDS = (
    "chain_id",
    "genesis_time_ms",
    "validators",
    "root_authorities",
    "prefixes",
    "hash",
)
_REQUIRED_TOP_FIELDS = ("chain_id", "genesis_time_ms", "validators")
_MAX_TIME_MS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    name: str
    public_key: bytes  # raw 32-byte Ed25519 key


@dataclass(frozen=True, slots=True)
class GenesisPrefix:
    prefix: str  # display form
    owner: str  # BID


@dataclass(frozen=True)
class Genesis:
    """A parsed, valid genesis. Build one with `parse_genesis` or `make_genesis`."""

    chain_id: str
    genesis_time_ms: int
    validators: tuple[GenesisValidator, ...]
    root_authorities: tuple[str, ...] = ()
    prefixes: tuple[GenesisPrefix, ...] = ()
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256
    genesis_hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        canonical = json.dumps(
            genesis_to_dict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        object.__setattr__(self, "genesis_hash", self.hash_fn(GENESIS_TAG + canonical))

    @property
    def hash_fn(self) -> HashFunction:
        """The chain's hash function (identifiers/hashing.py)."""
        return hash_function(self.hash_algorithm)

    @property
    def validator_keys(self) -> list[bytes]:
        """The validators' public keys, in genesis order."""
        return [v.public_key for v in self.validators]


def genesis_to_dict(genesis: Genesis) -> dict[str, Any]:
    out: dict[str, Any] = {
        "chain_id": genesis.chain_id,
        "genesis_time_ms": genesis.genesis_time_ms,
        "validators": [
            {"name": v.name, "public_key": v.public_key.hex()} for v in genesis.validators
        ],
        "root_authorities": list(genesis.root_authorities),
        "prefixes": [{"prefix": p.prefix, "owner": p.owner} for p in genesis.prefixes],
    }
    if genesis.hash_algorithm is not HashAlgorithm.SHA256:
        out["hash"] = genesis.hash_algorithm.value
    return out


def genesis_to_json(genesis: Genesis) -> str:
    """The genesis as a readable file (indented); parsing it gives back an equal Genesis."""
    return json.dumps(genesis_to_dict(genesis), indent=2, ensure_ascii=False) + "\n"


def make_genesis(
    chain_id: str,
    genesis_time_ms: int,
    validators: Sequence[tuple[str, bytes]],
    root_authorities: Iterable[str] = (),
    prefixes: Iterable[tuple[str, str]] = (),
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
) -> Genesis:
    """A validated genesis from Python values (for `spark init` and testnets)."""
    data: dict[str, Any] = {
        "chain_id": chain_id,
        "genesis_time_ms": genesis_time_ms,
        "validators": [{"name": name, "public_key": key.hex()} for name, key in validators],
        "root_authorities": list(root_authorities),
        "prefixes": [{"prefix": prefix, "owner": owner} for prefix, owner in prefixes],
    }
    if hash_algorithm is not HashAlgorithm.SHA256:
        data["hash"] = hash_algorithm.value
    return genesis_from_dict(data, "genesis")


def parse_genesis(data: bytes, source_name: str = GENESIS_FILE_NAME) -> Genesis:
    """Parse and validate genesis JSON; errors name `source_name` and the field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(source_name, "", f"not UTF-8 (byte {exc.start})") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise _error(
            source_name, "", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _DuplicateKey as exc:
        raise _error(source_name, "", f"key {exc.args[0]!r} appears twice in one object") from None
    except RecursionError:
        # a genesis is three levels deep; json's parser recurses once per level
        raise _error(source_name, "", "nested too deeply to be a genesis") from None
    except ValueError as exc:
        # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise _error(source_name, "", f"not valid JSON: {exc}") from None
    return genesis_from_dict(parsed, source_name)


def genesis_from_dict(data: object, source_name: str) -> Genesis:
    fields = _object(data, source_name, "", _TOP_FIELDS, _REQUIRED_TOP_FIELDS)
    chain_id = _chain_id(fields["chain_id"], source_name)
    time_ms = fields["genesis_time_ms"]
    if not isinstance(time_ms, int) or isinstance(time_ms, bool) or not 0 < time_ms <= _MAX_TIME_MS:
        raise _error(source_name, "genesis_time_ms", "must be a positive integer (ms since 1970)")
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=time_ms,
        validators=_validators(fields["validators"], source_name),
        root_authorities=_root_authorities(fields.get("root_authorities", []), source_name),
        prefixes=_prefixes(fields.get("prefixes", []), source_name),
        hash_algorithm=_hash_algorithm(fields.get("hash", HashAlgorithm.SHA256.value), source_name),
    )


def apply_genesis(state: StateView, genesis: Genesis) -> list[pb.PrefixRecord]:
    """Write the genesis prefixes into `state` at height 0; returns what was written."""
    written = []
    for item in genesis.prefixes:
        prefix = parse_prefix(item.prefix)
        record = pb.PrefixRecord(
            prefix=prefix.display, key=prefix.key, owner=item.owner, created_height=0
        )
        state.put_prefix(prefix.key, record)
        written.append(record)
    return written


# ---- validation of each part ----


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = item
    return out


def _error(source_name: str, path: str, problem: str) -> SparkError:
    where = f"{source_name}: {path}: " if path else f"{source_name}: "
    return SparkError(ErrorCode.INVALID_GENESIS, where + problem)


def _object(
    data: object, source: str, path: str, allowed: Sequence[str], required: Sequence[str]
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _error(source, path, f"must be a JSON object, got {_json_type(data)}")
    for key in data:
        if key not in allowed:
            inner = f"{path}.{key}" if path else key
            raise _error(source, inner, f"unknown field (expected one of {', '.join(allowed)})")
    for key in required:
        if key not in data:
            inner = f"{path}.{key}" if path else key
            raise _error(source, inner, "missing")
    return data


def _list(data: object, source: str, path: str) -> list[Any]:
    if not isinstance(data, list):
        raise _error(source, path, f"must be a JSON list, got {_json_type(data)}")
    return data


def _string(data: object, source: str, path: str) -> str:
    if not isinstance(data, str):
        raise _error(source, path, f"must be a string, got {_json_type(data)}")
    return data


def _json_type(data: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    if type(data) in names:
        return names[type(data)]
    return "number"


def _chain_id(data: object, source: str) -> str:
    chain_id = _string(data, source, "chain_id")
    if not chain_id:
        raise _error(source, "chain_id", "is empty")
    if len(chain_id.encode("utf-8")) > MAX_CHAIN_ID_BYTES:
        raise _error(source, "chain_id", f"longer than {MAX_CHAIN_ID_BYTES} bytes")
    if not _CHAIN_ID.fullmatch(chain_id):
        raise _error(
            source,
            "chain_id",
            f"{chain_id!r} must be ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return chain_id


def _validators(data: object, source: str) -> tuple[GenesisValidator, ...]:
    items = _list(data, source, "validators")
    if not items:
        raise _error(source, "validators", "must list at least one validator")
    if len(items) > MAX_VALIDATORS:
        raise _error(source, "validators", f"lists {len(items)}, at most {MAX_VALIDATORS} allowed")
    out: list[GenesisValidator] = []
    names: set[str] = set()
    keys: set[bytes] = set()
    for number, item in enumerate(items):
        path = f"validators[{number}]"
        fields = _object(item, source, path, ("name", "public_key"), ("name", "public_key"))
        name = _string(fields["name"], source, f"{path}.name")
        if not name or len(name) > MAX_VALIDATOR_NAME_CHARS or name != name.strip():
            raise _error(
                source,
                f"{path}.name",
                f"must be 1-{MAX_VALIDATOR_NAME_CHARS} characters without outer spaces",
            )
        if name in names:
            raise _error(source, f"{path}.name", f"{name!r} is used by an earlier validator")
        key_text = _string(fields["public_key"], source, f"{path}.public_key")
        if not _HEX64.fullmatch(key_text):
            raise _error(source, f"{path}.public_key", "not 64 hex characters")
        key = bytes.fromhex(key_text)
        if key in keys:
            raise _error(source, f"{path}.public_key", "is the key of an earlier validator")
        names.add(name)
        keys.add(key)
        out.append(GenesisValidator(name, key))
    return tuple(out)


def _hash_algorithm(data: object, source: str) -> HashAlgorithm:
    name = _string(data, source, "hash")
    try:
        return HashAlgorithm(name)
    except ValueError:
        choices = ", ".join(repr(a.value) for a in HashAlgorithm)
        raise _error(source, "hash", f"{name!r} is not one of {choices}") from None


def _bid(data: object, source: str, path: str) -> str:
    text = _string(data, source, path)
    try:
        parse_bid(text)
    except SparkError as exc:
        raise _error(source, path, f"not a BID: {exc.message}") from None
    return text


def _root_authorities(data: object, source: str) -> tuple[str, ...]:
    items = _list(data, source, "root_authorities")
    out: list[str] = []
    for number, item in enumerate(items):
        path = f"root_authorities[{number}]"
        bid = _bid(item, source, path)
        if bid in out:
            raise _error(source, path, f"{bid} is listed twice")
        out.append(bid)
    return tuple(out)


def _prefixes(data: object, source: str) -> tuple[GenesisPrefix, ...]:
    items = _list(data, source, "prefixes")
    out: list[GenesisPrefix] = []
    seen: set[str] = set()
    for number, item in enumerate(items):
        path = f"prefixes[{number}]"
        fields = _object(item, source, path, ("prefix", "owner"), ("prefix", "owner"))
        text = _string(fields["prefix"], source, f"{path}.prefix")
        try:
            prefix = parse_prefix(text)
        except SparkError as exc:
            raise _error(source, f"{path}.prefix", exc.message) from None
        if prefix.key in seen:
            raise _error(source, f"{path}.prefix", f"{text} is listed twice")
        seen.add(prefix.key)
        out.append(GenesisPrefix(prefix.display, _bid(fields["owner"], source, f"{path}.owner")))
    return tuple(out)
