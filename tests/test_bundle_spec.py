"""docs/proof-bundle.md is enough to write a verifier: the genesis hash (§2), the tree path
(§4) and the precommit signatures (§6) re-implemented here from the text alone, without the
ledger's code, agree with the valid vectors and refuse the tampered ones that concern them.
And the reference verifier, fed random corruptions of a vector, only ever refuses with a
ProofError (or accepts an unchanged meaning), never another exception."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import struct
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

from sparkchain.ledger.bundle import verify_bundle
from sparkchain.ledger.genesis import parse_genesis
from sparkchain.ledger.proof import ProofError

VECTORS = Path(__file__).resolve().parent / "vectors"


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _spec_genesis_hash(genesis: dict[str, Any]) -> str:
    canonical = {
        "chain_id": genesis["chain_id"],
        "genesis_time_ms": genesis["genesis_time_ms"],
        "validators": genesis["validators"],
        "root_authorities": genesis.get("root_authorities", []),
        "prefixes": genesis.get("prefixes", []),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return H(b"spark/genesis/v1" + text.encode("utf-8")).hex()


def _nibble(key: bytes, depth: int) -> int:
    return key[depth >> 1] >> 4 if depth % 2 == 0 else key[depth >> 1] & 15


def _spec_state_proof(root: bytes, identifier: str, value: bytes | None, proof: bytes) -> bool:
    lookup = "".join(c.upper() if "a" <= c <= "z" else c for c in identifier)
    key = H(bytes([1]) + b"r" + lookup.encode("utf-8"))
    kind, n = proof[0], proof[1]
    if kind > 2 or n > 64 or (kind == 0) != (value is not None):
        return False
    nodes, at = [], 2
    for i in range(n):
        occupied = int.from_bytes(proof[at : at + 2], "big")
        own = occupied >> _nibble(key, i) & 1
        if (i < n - 1 and not own) or (i == n - 1 and own != (kind != 1)):
            return False
        size = 32 * (bin(occupied).count("1") - own)
        if at + 2 + size > len(proof):
            return False
        nodes.append((occupied, proof[at + 2 : at + 2 + size], _nibble(key, i)))
        at += 2 + size
    rest = proof[at:]
    if kind == 2:
        other = rest[:32]
        if (
            len(rest) != 64
            or other == key
            or any(_nibble(other, i) != _nibble(key, i) for i in range(n))
        ):
            return False
        h: bytes | None = H(b"\x02" + rest)
    else:
        if rest:
            return False
        h = H(b"\x02" + key + H(value)) if value is not None else None
    for occupied, hashes, slot in reversed(nodes):
        cut = 32 * bin(occupied & ((1 << slot) - 1)).count("1")
        children = hashes if h is None else hashes[:cut] + h + hashes[cut:]
        h = H(b"\x03" + occupied.to_bytes(2, "big") + children)
    return (h or bytes(32)) == root


def _spec_signatures_ok(chain_id: str, certificate: dict[str, Any]) -> bool:
    raw_chain = chain_id.encode("utf-8")
    block_hash = bytes.fromhex(certificate["block_hash"])
    message = (
        b"spark/vote/v1"
        + bytes([len(raw_chain)])
        + raw_chain
        + struct.pack(">BQIB", 2, certificate["height"], certificate["round"], len(block_hash))
        + block_hash
    )
    for signature in certificate["signatures"]:
        verify_key = nacl.signing.VerifyKey(bytes.fromhex(signature["validator"]))
        try:
            verify_key.verify(message, bytes.fromhex(signature["signature"]))
        except nacl.exceptions.BadSignatureError:
            return False
    return True


def _spec_checks(bundle: dict[str, Any], genesis: dict[str, Any]) -> dict[str, bool]:
    header = bundle["header"]["view"]
    record = bundle["record"]
    value = None if record is None else base64.b64decode(record["bytes"])
    return {
        "genesis": bundle["genesis_hash"] == _spec_genesis_hash(genesis),
        "block_hash": H(base64.b64decode(bundle["header"]["bytes"])).hex()
        == bundle["certificate"]["view"]["block_hash"],
        "validators": H(
            b"".join(bytes.fromhex(v["public_key"]) for v in genesis["validators"])
        ).hex()
        == header["validators_hash"],
        "signatures": _spec_signatures_ok(genesis["chain_id"], bundle["certificate"]["view"]),
        "state": _spec_state_proof(
            bytes.fromhex(header["state_root"]),
            bundle["identifier"],
            value,
            base64.b64decode(bundle["state_proof"]),
        ),
    }


def test_a_verifier_written_from_the_spec_accepts_the_valid_vectors() -> None:
    genesis = _load("genesis.json")
    for name in ("valid-present.json", "valid-revoked.json", "valid-absent.json"):
        checks = _spec_checks(_load(name), genesis)
        assert all(checks.values()), (name, checks)


def test_a_verifier_written_from_the_spec_refuses_the_tampers_it_covers() -> None:
    genesis = _load("genesis.json")
    failing = {
        "tampered-record-bytes.json": "state",
        "tampered-record-dropped.json": "state",
        "tampered-absent-for-present.json": "state",
        "tampered-state-proof.json": "state",
        "tampered-header-bytes.json": "block_hash",
        "tampered-state-root.json": "signatures",
        "tampered-certificate-signature.json": "signatures",
        "tampered-validators-hash.json": "validators",
        "tampered-genesis-hash.json": "genesis",
    }
    for name, check in failing.items():
        assert not _spec_checks(_load(name), genesis)[check], name


def _corrupt(bundle: Any, rng: random.Random) -> Any:
    """One random change somewhere in the JSON tree: a flipped character, another type, a
    dropped or added key."""
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            paths.append((node, key))
            if isinstance(child, dict | list):
                walk(child)

    walk(bundle)
    parent, key = rng.choice(paths)
    old = parent[key]
    choice = rng.randrange(5)
    if choice == 0 and isinstance(old, str) and old:
        at = rng.randrange(len(old))
        parent[key] = old[:at] + rng.choice("A/+=0fZ\u00e9") + old[at + 1 :]
    elif choice == 1:
        parent[key] = rng.choice([None, 0, -1, 2**64, "", [], {}, True, 1.5, "x" * 300])
    elif choice == 2 and isinstance(parent, dict):
        del parent[key]
    elif choice == 3 and isinstance(parent, dict):
        parent["extra"] = old
    elif isinstance(old, int) and not isinstance(old, bool):
        parent[key] = old + rng.choice([-1, 1])
    else:
        parent[key] = [old]
    return bundle


def test_random_corruptions_are_refused_with_a_proof_error_never_a_crash() -> None:
    genesis = parse_genesis((VECTORS / "genesis.json").read_bytes())
    rng = random.Random(20261206)
    for name in ("valid-present.json", "valid-revoked.json", "valid-absent.json"):
        original = _load(name)
        for _ in range(400):
            bundle = _corrupt(copy.deepcopy(original), rng)
            try:
                verify_bundle(bundle, genesis)
            except ProofError:
                continue
            # accepted: only a change that does not alter what is proven, e.g. the
            # identifier's ASCII case
            assert bundle["record"] == original["record"], (name, bundle)
            assert bundle["header"] == original["header"], (name, bundle)
