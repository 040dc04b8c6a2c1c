"""Proof bundles (issue 11 item 4, DESIGN §10): one JSON document that carries a record (or
its absence) with everything needed to check it offline but the genesis file.

The format is specified in docs/proof-bundle.md (version 1); `build_bundle` writes it from a
gRPC ResolveProof and `verify_bundle` checks one. Checking a bundle, in order (the first
failure raises ProofError with its ProofFailure reason):
    1. form: a JSON object of exactly the fields of its version, "format" first, then
       "version" (UNSUPPORTED_VERSION), each field of its type and size, base64 canonical
       (MALFORMED);
    2. the chain: "chain_id" and "genesis_hash" are those of the genesis given (WRONG_CHAIN,
       GENESIS_MISMATCH);
    3. the bytes decode, in their canonical protobuf encoding (MALFORMED), and each view is
       exactly what its bytes decode to (VIEW_MISMATCH): nobody is shown a URL, a height or
       a signer that the proof does not cover;
    4. the chain of evidence of ledger/proof.py: the validator changes from the genesis set
       (each a header certified by the set before it, DESIGN §12) → header → certificate by
       a quorum of the set of its height → tree path → record of the identifier asked about.
What a verified bundle does not prove, as for every resolution proof: that no later block
changed the record (show its block time).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from google.protobuf.message import DecodeError, Message

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_identifier
from sparkchain.identifiers.limits import (
    MAX_BUNDLE_CERTIFICATE_BYTES,
    MAX_BUNDLE_HEADER_BYTES,
    MAX_BUNDLE_JSON_BYTES,
    MAX_BUNDLE_STATE_PROOF_BYTES,
    MAX_BUNDLE_VALIDATOR_CHANGES,
    MAX_IDENTIFIER_BYTES,
    MAX_JSON_SAFE_INTEGER,
    MAX_RECORD_BYTES,
    MAX_VALIDATORS,
)
from sparkchain.ledger.genesis import Genesis
from sparkchain.ledger.handle_view import record_view
from sparkchain.ledger.proof import ProofError, ProofFailure, verify_resolution_header
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb

BUNDLE_FORMAT: Final = "sparkchain-proof-bundle"
BUNDLE_VERSION: Final = 1
_FIELDS: Final = (
    "format",
    "version",
    "chain_id",
    "genesis_hash",
    "identifier",
    "record",
    "state_proof",
    "header",
    "certificate",
    "validator_changes",
)
_PART_FIELDS: Final = ("bytes", "view")
_CHANGE_FIELDS: Final = ("header", "certificate", "validators")

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified bundle shows: the record (None: proven absent) as the state right
    after block `height` (at `time_ms`), committed by `signers` of the `validators`."""

    identifier: str
    chain_id: str
    height: int
    time_ms: int
    block_hash: bytes
    signers: int
    validators: int
    record: pb.Record | None


# ---------------------------------------------------------------------------- building


def build_bundle(genesis: Genesis, identifier: str, proof: api_pb2.ResolveProof) -> dict[str, Any]:
    """The bundle of a resolution proof (as node/ledger_reads.py `resolve_with_proof` makes
    it) for `identifier`, on the chain of `genesis`. Building checks nothing but form:
    callers verify before they hand it on (`verify_bundle`)."""
    if not proof.HasField("commit"):
        raise ProofError(ProofFailure.MALFORMED, "proof has no commit certificate")
    if len(proof.validator_changes) > MAX_BUNDLE_VALIDATOR_CHANGES:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"the validator set changed {len(proof.validator_changes)} times; a bundle "
            f"carries at most {MAX_BUNDLE_VALIDATOR_CHANGES} changes",
        )
    header = _decode(pb.BlockHeader, proof.header, "header")
    certificate_bytes = proof.commit.SerializeToString(deterministic=True)
    record = None
    if proof.record_bytes:
        record = {
            "bytes": _b64(proof.record_bytes),
            "view": record_view(_decode(pb.Record, proof.record_bytes, "record")),
        }
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.genesis_hash.hex(),
        "identifier": identifier,
        "record": record,
        "state_proof": _b64(proof.state_proof),
        "header": {"bytes": _b64(proof.header), "view": header_view(header)},
        "certificate": {"bytes": _b64(certificate_bytes), "view": certificate_view(proof.commit)},
        "validator_changes": [_change_entry(change) for change in proof.validator_changes],
    }


def _change_entry(change: api_pb2.ValidatorChange) -> dict[str, Any]:
    """One validator-set change: the certified header whose validators_hash commits to the
    new set, its certificate (by the set before), and the new set's keys in order."""
    header = _decode(pb.BlockHeader, change.header, "validator_changes header")
    return {
        "header": {"bytes": _b64(change.header), "view": header_view(header)},
        "certificate": {
            "bytes": _b64(change.commit.SerializeToString(deterministic=True)),
            "view": certificate_view(change.commit),
        },
        "validators": [key.hex() for key in change.validators],
    }


def header_view(header: pb.BlockHeader) -> dict[str, Any]:
    """Every header field by its proto name; bytes as lowercase hex."""
    return {
        "chain_id": header.chain_id,
        "height": header.height,
        "time_ms": header.time_ms,
        "prev_hash": header.prev_hash.hex(),
        "last_commit_hash": header.last_commit_hash.hex(),
        "tx_root": header.tx_root.hex(),
        "state_root": header.state_root.hex(),
        "validators_hash": header.validators_hash.hex(),
        "proposer": header.proposer.hex(),
    }


def certificate_view(certificate: pb.CommitCertificate) -> dict[str, Any]:
    return {
        "height": certificate.height,
        "round": certificate.round,
        "block_hash": certificate.block_hash.hex(),
        "signatures": [
            {"validator": s.validator.hex(), "signature": s.signature.hex()}
            for s in certificate.signatures
        ],
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------- verifying


def verify_bundle(bundle: object, genesis: Genesis) -> Verified:
    """Check `bundle` (parsed JSON) against `genesis` alone; raises ProofError (code
    INVALID_PROOF) with the reason and a message naming the field that fails."""
    fields = _form(bundle)
    if fields["chain_id"] != genesis.chain_id:
        raise ProofError(
            ProofFailure.WRONG_CHAIN,
            f"bundle is for chain {fields['chain_id']!r}, the genesis is of {genesis.chain_id!r}",
        )
    if fields["genesis_hash"] != genesis.genesis_hash.hex():
        raise ProofError(
            ProofFailure.GENESIS_MISMATCH,
            f"bundle names genesis {fields['genesis_hash']}, the genesis given hashes to "
            f"{genesis.genesis_hash.hex()}",
        )
    changes = [_change(entry, number) for number, entry in enumerate(fields["validator_changes"])]
    identifier = fields["identifier"]
    header_bytes, header = _part(fields, "header", pb.BlockHeader, MAX_BUNDLE_HEADER_BYTES)
    _same_view("header", header_view(header), fields["header"]["view"])
    _, certificate = _part(
        fields, "certificate", pb.CommitCertificate, MAX_BUNDLE_CERTIFICATE_BYTES
    )
    _same_view("certificate", certificate_view(certificate), fields["certificate"]["view"])
    record_bytes = b""
    if fields["record"] is not None:
        record_bytes, record = _part(fields, "record", pb.Record, MAX_RECORD_BYTES)
        _same_view("record", record_view(record), fields["record"]["view"])
    state_proof = _base64(fields["state_proof"], "state_proof", MAX_BUNDLE_STATE_PROOF_BYTES)
    proof = api_pb2.ResolveProof(
        record_bytes=record_bytes,
        state_proof=state_proof,
        header=header_bytes,
        commit=certificate,
        validator_changes=changes,
    )
    proven, _ = verify_resolution_header(
        genesis.validator_keys, genesis.chain_id, identifier, proof, genesis.hash_fn
    )
    return Verified(
        identifier=identifier,
        chain_id=genesis.chain_id,
        height=header.height,
        time_ms=header.time_ms,
        block_hash=certificate.block_hash,
        signers=len(certificate.signatures),
        validators=len(_set_of(genesis, changes, header.height)),
        record=proven,
    )


def _change(entry: Mapping[str, Any], number: int) -> api_pb2.ValidatorChange:
    """The bytes of one `validator_changes` entry, each view checked (form: `_form`)."""
    where = f"validator_changes[{number}]"
    header_bytes, header = _part(
        entry, "header", pb.BlockHeader, MAX_BUNDLE_HEADER_BYTES, f"{where}.header"
    )
    _same_view(f"{where}.header", header_view(header), entry["header"]["view"])
    _, certificate = _part(
        entry,
        "certificate",
        pb.CommitCertificate,
        MAX_BUNDLE_CERTIFICATE_BYTES,
        f"{where}.certificate",
    )
    _same_view(f"{where}.certificate", certificate_view(certificate), entry["certificate"]["view"])
    keys = [bytes.fromhex(key) for key in entry["validators"]]
    return api_pb2.ValidatorChange(header=header_bytes, commit=certificate, validators=keys)


def _set_of(genesis: Genesis, changes: list[api_pb2.ValidatorChange], height: int) -> list[bytes]:
    """The keys that sign `height`, by changes already verified (ledger/proof.py)."""
    keys = list(genesis.validator_keys)
    for change in changes:
        if pb.BlockHeader.FromString(change.header).height + 1 <= height:
            keys = list(change.validators)
    return keys


def parse_bundle_json(data: bytes) -> object:
    """The parsed JSON of a bundle file (at most MAX_BUNDLE_JSON_BYTES of UTF-8, no key
    twice in an object: parsers disagree on which of two one would keep)."""
    if len(data) > MAX_BUNDLE_JSON_BYTES:
        raise _malformed(f"a bundle is at most {MAX_BUNDLE_JSON_BYTES} bytes, not {len(data)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise _malformed(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise _malformed(f"not JSON: {exc}") from None
    except RecursionError:
        raise _malformed("nested too deeply to be a bundle") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, item in pairs:
        if name in out:
            raise _malformed(f"key {name[:64]!r} appears twice in one object")
        out[name] = item
    return out


def _malformed(message: str) -> ProofError:
    return ProofError(ProofFailure.MALFORMED, message)


def _form(bundle: object) -> dict[str, Any]:
    if not isinstance(bundle, dict):
        raise _malformed(f"a bundle is a JSON object, not {_json_type(bundle)}")
    if bundle.get("format") != BUNDLE_FORMAT:
        raise ProofError(
            ProofFailure.UNSUPPORTED_VERSION,
            f"format: expected {BUNDLE_FORMAT!r}, got {_shown(bundle.get('format'))}",
        )
    version = bundle.get("version")
    if type(version) is not int or version != BUNDLE_VERSION:
        raise ProofError(
            ProofFailure.UNSUPPORTED_VERSION,
            f"version: this verifier reads version {BUNDLE_VERSION}, got {_shown(version)}",
        )
    _exact_fields(bundle, _FIELDS, "bundle")
    _typed(bundle, "chain_id", str)
    _typed(bundle, "genesis_hash", str)
    identifier = _typed(bundle, "identifier", str)
    if len(identifier.encode("utf-8", "surrogatepass")) > MAX_IDENTIFIER_BYTES:
        raise _malformed(f"identifier: longer than {MAX_IDENTIFIER_BYTES} bytes")
    try:
        parse_identifier(identifier)
    except SparkError as error:
        raise _malformed(f"identifier: {error.message}") from None
    if bundle["record"] is not None:
        _typed(bundle, "record", dict)
        _exact_fields(bundle["record"], _PART_FIELDS, "record")
    for name in ("header", "certificate"):
        _typed(bundle, name, dict)
        _exact_fields(bundle[name], _PART_FIELDS, name)
    _typed(bundle, "state_proof", str)
    changes = _typed(bundle, "validator_changes", list)
    if len(changes) > MAX_BUNDLE_VALIDATOR_CHANGES:
        raise _malformed(f"validator_changes: more than {MAX_BUNDLE_VALIDATOR_CHANGES} changes")
    for number, entry in enumerate(changes):
        _change_form(entry, f"validator_changes[{number}]")
    return bundle


def _change_form(entry: object, where: str) -> None:
    if not isinstance(entry, dict):
        raise _malformed(f"{where}: must be a JSON object, got {_json_type(entry)}")
    _exact_fields(entry, _CHANGE_FIELDS, where)
    for name in ("header", "certificate"):
        if not isinstance(entry[name], dict):
            raise _malformed(f"{where}.{name}: must be a JSON object")
        _exact_fields(entry[name], _PART_FIELDS, f"{where}.{name}")
    keys = entry["validators"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_VALIDATORS:
        raise _malformed(f"{where}.validators: must be a list of 1 to {MAX_VALIDATORS} keys")
    for key in keys:
        if not isinstance(key, str) or not _is_key_hex(key):
            raise _malformed(f"{where}.validators: {_shown(key)} is not 64 lowercase hex")


def _is_key_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _exact_fields(data: Mapping[str, Any], expected: tuple[str, ...], where: str) -> None:
    missing = [name for name in expected if name not in data]
    if missing:
        raise _malformed(f"{where}: missing field {missing[0]!r}")
    unknown = sorted(str(name) for name in data if name not in expected)
    if unknown:
        raise _malformed(f"{where}: unknown field {unknown[0][:64]!r}")


def _typed(data: Mapping[str, Any], name: str, kind: type) -> Any:
    item = data[name]
    if not isinstance(item, kind):
        raise _malformed(f"{name}: must be a JSON {_json_name(kind)}, got {_json_type(item)}")
    return item


def _part(
    fields: Mapping[str, Any],
    name: str,
    message_type: Callable[[], M],
    max_bytes: int,
    where: str | None = None,
) -> tuple[bytes, M]:
    shown = where or name
    raw = _base64(fields[name]["bytes"], f"{shown}.bytes", max_bytes)
    message = _decode(message_type, raw, shown)
    # unknown fields survive re-encoding: drop them first, so that they count as a change
    message.DiscardUnknownFields()
    if message.SerializeToString(deterministic=True) != raw:
        raise _malformed(f"{shown}.bytes: not in canonical protobuf encoding")
    return raw, message


def _decode(message_type: Callable[[], M], raw: bytes, name: str) -> M:
    message = message_type()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise _malformed(f"{name}.bytes: do not decode: {exc}") from None
    return message


def _base64(text: object, name: str, max_bytes: int) -> bytes:
    if not isinstance(text, str):
        raise _malformed(f"{name}: must be a base64 string, got {_json_type(text)}")
    if len(text) > 4 * ((max_bytes + 2) // 3):
        raise _malformed(f"{name}: longer than {max_bytes} bytes")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise _malformed(f"{name}: not base64 (RFC 4648 §4, padded)") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise _malformed(f"{name}: not in canonical base64 (padding bits must be zero)")
    return raw


def _same_view(name: str, expected: dict[str, Any], shown: object) -> None:
    """The view must be what the bytes decode to, compared as canonical JSON text (so
    `true` is not `1` and `1.0` is not `1`), and within the integers JavaScript holds."""
    try:
        differs = _canonical_json(expected) != _canonical_json(shown)
    except (TypeError, ValueError):
        raise _malformed(f"{name}.view: not JSON data") from None
    if differs:
        raise ProofError(
            ProofFailure.VIEW_MISMATCH,
            f"{name}.view differs from what {name}.bytes decode to"
            + _first_difference(expected, shown),
        )
    _check_safe_integers(expected, name)


def _canonical_json(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _first_difference(expected: object, shown: object, path: str = "") -> str:
    if isinstance(expected, dict) and isinstance(shown, dict):
        for key in sorted(set(expected) | {str(k) for k in shown}):
            if key not in expected or key not in shown:
                return f" (at {path}.{key[:64]}: present in one only)"
            inner = _first_difference(expected[key], shown[key], f"{path}.{key}")
            if inner:
                return inner
        return ""
    if isinstance(expected, list) and isinstance(shown, list):
        if len(expected) != len(shown):
            return f" (at {path or 'view'}: {len(shown)} items, the bytes hold {len(expected)})"
        for number, (one, other) in enumerate(zip(expected, shown, strict=True)):
            inner = _first_difference(one, other, f"{path}[{number}]")
            if inner:
                return inner
        return ""
    if _canonical_json(expected) != _canonical_json(shown):
        return f" (at {path or 'view'}: shows {_shown(shown)}, the bytes hold {_shown(expected)})"
    return ""


def _check_safe_integers(data: object, name: str) -> None:
    if isinstance(data, dict):
        for item in data.values():
            _check_safe_integers(item, name)
    elif isinstance(data, list):
        for item in data:
            _check_safe_integers(item, name)
    elif isinstance(data, int) and data > MAX_JSON_SAFE_INTEGER:
        raise _malformed(f"{name}: the integer {data} is beyond 2**53 - 1 (not exact in JSON)")


def _shown(data: object) -> str:
    text = _canonical_json(data) if not isinstance(data, str) else repr(data)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_name(kind: type) -> str:
    return {str: "string", dict: "object", list: "list", int: "number"}.get(kind, kind.__name__)


def _json_type(data: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(data), "number")
