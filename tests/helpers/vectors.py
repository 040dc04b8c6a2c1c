"""The shared proof-bundle test vectors (docs/proof-bundle.md): `make vectors` runs

    python -m tests.helpers.vectors --output tests/vectors

and writes a genesis, valid bundles and tampered ones, and manifest.json naming each file,
whether it must verify and, if not, the reason a verifier must give. Other verifiers (the
explorer's JavaScript, a third party's) run over the same files.

Deterministic: keys from fixed names, nonces from seeded Randoms, block times from the test
genesis clock; the chain is built in-process on a LevelDB in a temporary folder with the
ledger's own code, and certificates are real Ed25519 precommits. tests/test_vectors.py
regenerates the files and fails if any byte differs from the committed ones.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkchain.consensus.messages import VoteType
from sparkchain.consensus.signbytes import chain_prefix, vote_sign_bytes
from sparkchain.identifiers.tags import VOTE_TAG
from sparkchain.ledger import blocks
from sparkchain.ledger.bundle import build_bundle, certificate_view, header_view
from sparkchain.ledger.genesis import Genesis, genesis_to_json
from sparkchain.ledger.handle_view import record_view
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import RulesChain, governance_tx, key, make_test_genesis, update, value
from tests.helpers.ledger import LedgerChain

GENESIS_FILE = "genesis.json"
MANIFEST_FILE = "manifest.json"
PRESENT = "88/Widget-1"
REVOKED = "88/Gone-1"
ABSENT = "88/Missing-1"
CHANGED = "88/Widget-2"  # on the chain whose validator set changes twice
# the sets of that chain, by key name: the genesis's, then node4 replaced by node5 (from
# block 3), then node1's key rotated (from block 5)
SET_0 = ("validator1", "validator2", "validator3", "validator4")
SET_1 = ("validator1", "validator2", "validator3", "validator5")
SET_2 = ("validator6", "validator2", "validator3", "validator5")
BINARY_VALUE = bytes(range(0xF0, 0x100)) + b"\x00\x01 not UTF-8"

Bundle = dict[str, Any]


@dataclass(frozen=True)
class Tamper:
    name: str
    base: str  # which valid bundle it starts from: present, absent or revoked
    reason: str
    description: str
    change: Callable[[Bundle, Genesis], None]


def build_chain(folder: Path) -> tuple[Genesis, dict[str, Bundle]]:
    """A 4-validator chain with a record of text and binary values, a revoked record and
    (implicitly) an absent one; the three valid bundles at its last block."""
    chain = LedgerChain(folder / "ledger", make_test_genesis(validators=4))
    try:
        acme = chain.signer("acme", seed=7)
        widget = [
            value(1, "URL", "https://example.com/widget-1"),
            value(2, "EMAIL", "ops@example.com"),
            value(3, "HS_PUBKEY", BINARY_VALUE),
            value(1001, "URL", "https://example.com/templates/t1", ttl=3600),
        ]
        now = chain.next_time_ms
        gone = [value(1, "URL", "https://example.com/gone-1")]
        chain.commit(
            [acme.register(PRESENT, widget, now_ms=now), acme.register(REVOKED, gone, now_ms=now)]
        )
        chain.commit([acme.revoke(REVOKED, "recalled", now_ms=chain.next_time_ms)])
        chain.commit([])
        bundles = {}
        for name, identifier in (("present", PRESENT), ("revoked", REVOKED), ("absent", ABSENT)):
            _, proof = chain.ledger.resolve_with_proof(identifier)
            bundles[name] = build_bundle(chain.genesis, identifier, proof)
        return chain.genesis, bundles
    finally:
        chain.close()


def build_changing_chain(folder: Path) -> Bundle:
    """The same genesis's chain whose set changes twice (SET_0 → SET_1 → SET_2); the bundle
    of CHANGED at block 5, signed by SET_2, carrying both changes (headers 2 and 4)."""
    chain = LedgerChain(folder / "changing", make_test_genesis(validators=4))
    clock = RulesChain(chain.genesis)  # governance_tx reads only its clock
    try:
        clock.time_ms = chain.next_time_ms
        replace = governance_tx(clock, update(remove=["node4"], add=[("node5", "validator5")]))
        acme = chain.signer("acme", seed=11)
        url = [value(1, "URL", "https://example.com/widget-2")]
        _commit(chain, [replace, acme.register(CHANGED, url, now_ms=chain.next_time_ms)], SET_0)
        _commit(chain, [], SET_0)  # block 2: the first change's header
        clock.time_ms = chain.next_time_ms
        rotate = governance_tx(clock, update(rotate=[("node1", "validator6")]), nonce=2)
        _commit(chain, [rotate], SET_1)
        _commit(chain, [], SET_1)  # block 4: the second change's header
        _commit(chain, [], SET_2[1:])
        _, proof = chain.ledger.resolve_with_proof(CHANGED)
        return build_bundle(chain.genesis, CHANGED, proof)
    finally:
        chain.close()


def _commit(chain: LedgerChain, txs: list[pb.SignedTx], signers: tuple[str, ...]) -> None:
    # the first signer proposes: the genesis's first validator leaves the set at block 5
    built = chain.ledger.build_block(txs, chain.next_time_ms, key(signers[0]).public_key)
    height = built.pending.height
    certificate = pb.CommitCertificate(height=height, round=0, block_hash=built.block_hash)
    for name in signers[:3]:
        certificate.signatures.append(_precommit_by(chain.genesis, name, height, built.block_hash))
    chain.ledger.commit_block(built.pending, certificate)


# ---- the edits a tamper makes, keeping every other part consistent


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _raw(part: str) -> bytes:
    return base64.b64decode(part)


def _header(bundle: Bundle) -> pb.BlockHeader:
    return pb.BlockHeader.FromString(_raw(bundle["header"]["bytes"]))


def _set_header(bundle: Bundle, header: pb.BlockHeader) -> None:
    bundle["header"] = {"bytes": _b64(blocks.encode_header(header)), "view": header_view(header)}


def _certificate(bundle: Bundle) -> pb.CommitCertificate:
    return pb.CommitCertificate.FromString(_raw(bundle["certificate"]["bytes"]))


def _set_certificate(bundle: Bundle, certificate: pb.CommitCertificate) -> None:
    bundle["certificate"] = {
        "bytes": _b64(certificate.SerializeToString(deterministic=True)),
        "view": certificate_view(certificate),
    }


def _set_record(bundle: Bundle, record: pb.Record) -> None:
    bundle["record"] = {
        "bytes": _b64(record.SerializeToString(deterministic=True)),
        "view": record_view(record),
    }


def _precommit_by(genesis: Genesis, signer: str, height: int, block_hash: bytes) -> pb.CommitSig:
    return _precommit(genesis, signer, height, block_hash)


def _precommit(genesis: Genesis, signer: str, height: int, block_hash: bytes) -> pb.CommitSig:
    sign_bytes = vote_sign_bytes(
        chain_prefix(genesis.chain_id), VoteType.PRECOMMIT, height, 0, block_hash
    )
    signing_key = key(signer)
    return pb.CommitSig(
        validator=signing_key.public_key, signature=signing_key.sign(VOTE_TAG, sign_bytes)
    )


def _record_url_changed(bundle: Bundle, genesis: Genesis) -> None:
    record = pb.Record.FromString(_raw(bundle["record"]["bytes"]))
    record.values[0].data = b"https://attacker.example/widget-1"
    _set_record(bundle, record)


def _view_url_changed(bundle: Bundle, genesis: Genesis) -> None:
    bundle["record"]["view"]["values"][0]["data"]["value"] = "https://attacker.example/widget-1"


def _view_shows_active(bundle: Bundle, genesis: Genesis) -> None:
    bundle["record"]["view"]["status"] = "ACTIVE"
    del bundle["record"]["view"]["revokeReason"]


def _record_dropped(bundle: Bundle, genesis: Genesis) -> None:
    bundle["record"] = None


def _absent_claims_present(bundle: Bundle, genesis: Genesis) -> None:
    bundle["identifier"] = PRESENT


def _header_time_changed(bundle: Bundle, genesis: Genesis) -> None:
    header = _header(bundle)
    header.time_ms += 1
    _set_header(bundle, header)


def _header_view_height(bundle: Bundle, genesis: Genesis) -> None:
    bundle["header"]["view"]["height"] += 1


def _state_root_changed(bundle: Bundle, genesis: Genesis) -> None:
    # the certificate is pointed at the new header too: only the signatures can tell
    header = _header(bundle)
    header.state_root = bytes(32)
    _set_header(bundle, header)
    certificate = _certificate(bundle)
    certificate.block_hash = blocks.block_hash(blocks.encode_header(header))
    _set_certificate(bundle, certificate)


def _validators_hash_changed(bundle: Bundle, genesis: Genesis) -> None:
    # re-signed by a quorum of the real validators: a set the genesis does not name
    header = _header(bundle)
    header.validators_hash = bytes(32)
    _set_header(bundle, header)
    block_hash = blocks.block_hash(blocks.encode_header(header))
    certificate = pb.CommitCertificate(height=header.height, round=0, block_hash=block_hash)
    for number in (1, 2, 3):
        certificate.signatures.append(
            _precommit(genesis, f"validator{number}", header.height, block_hash)
        )
    _set_certificate(bundle, certificate)


def _state_proof_sibling_flipped(bundle: Bundle, genesis: Genesis) -> None:
    proof = bytearray(_raw(bundle["state_proof"]))
    proof[4] ^= 0x01  # the first byte of the root node's first sibling hash
    bundle["state_proof"] = _b64(bytes(proof))


def _signature_flipped(bundle: Bundle, genesis: Genesis) -> None:
    certificate = _certificate(bundle)
    signature = bytearray(certificate.signatures[0].signature)
    signature[0] ^= 0x01
    certificate.signatures[0].signature = bytes(signature)
    _set_certificate(bundle, certificate)


def _certificate_view_signer(bundle: Bundle, genesis: Genesis) -> None:
    view = bundle["certificate"]["view"]
    view["signatures"][0]["validator"] = genesis.validators[3].public_key.hex()


def _outsider_signs(bundle: Bundle, genesis: Genesis) -> None:
    certificate = _certificate(bundle)
    certificate.signatures[0].CopyFrom(
        _precommit(genesis, "outsider", certificate.height, certificate.block_hash)
    )
    _set_certificate(bundle, certificate)


def _too_few_signers(bundle: Bundle, genesis: Genesis) -> None:
    certificate = _certificate(bundle)
    del certificate.signatures[2:]
    _set_certificate(bundle, certificate)


def _duplicate_signer(bundle: Bundle, genesis: Genesis) -> None:
    certificate = _certificate(bundle)
    certificate.signatures[2].CopyFrom(certificate.signatures[0])
    _set_certificate(bundle, certificate)


def _chain_id_changed(bundle: Bundle, genesis: Genesis) -> None:
    bundle["chain_id"] = "another-chain"


def _version_2(bundle: Bundle, genesis: Genesis) -> None:
    bundle["version"] = 2


def _genesis_hash_changed(bundle: Bundle, genesis: Genesis) -> None:
    bundle["genesis_hash"] = "00" * 32


def _validator_change_added(bundle: Bundle, genesis: Genesis) -> None:
    bundle["validator_changes"] = [{"header": bundle["header"]}]


def _change_by_wrong_set(bundle: Bundle, genesis: Genesis) -> None:
    # the first change's header re-certified by the set it installs, not the one before
    change = bundle["validator_changes"][0]
    certificate = pb.CommitCertificate.FromString(_raw(change["certificate"]["bytes"]))
    del certificate.signatures[:]
    for name in SET_1[1:]:
        certificate.signatures.append(
            _precommit(genesis, name, certificate.height, certificate.block_hash)
        )
    change["certificate"] = {
        "bytes": _b64(certificate.SerializeToString(deterministic=True)),
        "view": certificate_view(certificate),
    }


def _last_change_dropped(bundle: Bundle, genesis: Genesis) -> None:
    del bundle["validator_changes"][-1]


def _changes_reordered(bundle: Bundle, genesis: Genesis) -> None:
    bundle["validator_changes"].reverse()


def _change_names_other_keys(bundle: Bundle, genesis: Genesis) -> None:
    bundle["validator_changes"][0]["validators"][3] = key("mallory").public_key.hex()


def _state_proof_not_base64(bundle: Bundle, genesis: Genesis) -> None:
    bundle["state_proof"] = bundle["state_proof"][:-4] + "!!!="


def _header_not_canonical(bundle: Bundle, genesis: Genesis) -> None:
    # an unknown field 15 (varint 1) appended: it decodes, but it is not what was certified
    raw = _raw(bundle["header"]["bytes"]) + b"\x78\x01"
    bundle["header"]["bytes"] = _b64(raw)


def _unknown_field(bundle: Bundle, genesis: Genesis) -> None:
    bundle["note"] = "trust me"


TAMPERS = (
    Tamper("record-bytes", "present", "STATE_PROOF_MISMATCH",
           "record bytes carry another URL (view re-rendered to match)", _record_url_changed),
    Tamper("record-view-url", "present", "VIEW_MISMATCH",
           "record view shows another URL than the bytes", _view_url_changed),
    Tamper("record-view-status", "revoked", "VIEW_MISMATCH",
           "a revoked record's view says ACTIVE", _view_shows_active),
    Tamper("record-dropped", "present", "STATE_PROOF_MISMATCH",
           "a present record's bundle claims absence", _record_dropped),
    Tamper("absent-for-present", "absent", "STATE_PROOF_MISMATCH",
           "an absence proof relabelled as the absence of a registered identifier",
           _absent_claims_present),
    Tamper("header-bytes", "present", "CERTIFICATE_MISMATCH",
           "header time_ms + 1 (view re-rendered to match)", _header_time_changed),
    Tamper("header-view", "present", "VIEW_MISMATCH",
           "header view shows another height", _header_view_height),
    Tamper("header-not-canonical", "present", "MALFORMED",
           "header bytes with an unknown field appended", _header_not_canonical),
    Tamper("state-root", "present", "BAD_CERTIFICATE",
           "header state_root replaced, certificate block_hash pointed at the new header",
           _state_root_changed),
    Tamper("validators-hash", "present", "WRONG_VALIDATORS",
           "header names another validator set (re-signed by a quorum)",
           _validators_hash_changed),
    Tamper("state-proof", "present", "STATE_PROOF_MISMATCH",
           "one bit of a sibling hash in the tree path flipped", _state_proof_sibling_flipped),
    Tamper("certificate-signature", "present", "BAD_CERTIFICATE",
           "one bit of a precommit signature flipped", _signature_flipped),
    Tamper("certificate-view", "present", "VIEW_MISMATCH",
           "certificate view names another signer than the bytes", _certificate_view_signer),
    Tamper("signer-not-in-set", "present", "UNKNOWN_SIGNER",
           "a valid precommit by a key outside the genesis set", _outsider_signs),
    Tamper("too-few-signers", "present", "TOO_FEW_SIGNERS",
           "2 of 4 validators signed; a quorum is 3", _too_few_signers),
    Tamper("duplicate-signer", "present", "DUPLICATE_SIGNER",
           "one validator's precommit twice", _duplicate_signer),
    Tamper("wrong-chain-id", "present", "WRONG_CHAIN",
           "bundle chain_id is another chain's", _chain_id_changed),
    Tamper("wrong-version", "present", "UNSUPPORTED_VERSION",
           "version 2", _version_2),
    Tamper("genesis-hash", "present", "GENESIS_MISMATCH",
           "genesis_hash of another genesis", _genesis_hash_changed),
    Tamper("validator-changes", "present", "MALFORMED",
           "a validator change of the wrong form (a header only)", _validator_change_added),
    Tamper("change-wrong-set", "changes", "UNKNOWN_SIGNER",
           "the first set change certified by the set it installs, not by the genesis set",
           _change_by_wrong_set),
    Tamper("change-dropped", "changes", "WRONG_VALIDATORS",
           "the last set change left out: the header names a set the changes do not give",
           _last_change_dropped),
    Tamper("changes-reordered", "changes", "MALFORMED",
           "the two set changes swapped: the earlier one then comes after, out of chain order",
           _changes_reordered),
    Tamper("change-other-keys", "changes", "WRONG_VALIDATORS",
           "a set change names a key its certified header does not commit to",
           _change_names_other_keys),
    Tamper("state-proof-not-base64", "absent", "MALFORMED",
           "state_proof is not base64", _state_proof_not_base64),
    Tamper("unknown-field", "present", "MALFORMED",
           "a field version 1 does not have", _unknown_field),
)  # fmt: skip


def write_vectors(output: Path) -> list[str]:
    """Write every vector file into `output`; returns the file names written."""
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spark-vectors-") as scratch:
        genesis, bundles = build_chain(Path(scratch))
        bundles["changes"] = build_changing_chain(Path(scratch))
    files = {GENESIS_FILE: genesis_to_json(genesis)}
    entries: list[dict[str, Any]] = []
    for name, bundle in bundles.items():
        file = f"valid-{name}.json"
        files[file] = _json_text(bundle)
        entries.append(
            {
                "file": file,
                "valid": True,
                "identifier": bundle["identifier"],
                "present": bundle["record"] is not None,
                "height": bundle["header"]["view"]["height"],
                "signers": len(bundle["certificate"]["view"]["signatures"]),
                "validators": _set_size(bundle, genesis),
                "validator_changes": len(bundle["validator_changes"]),
            }
        )
    for tamper in TAMPERS:
        bundle = copy.deepcopy(bundles[tamper.base])
        tamper.change(bundle, genesis)
        file = f"tampered-{tamper.name}.json"
        files[file] = _json_text(bundle)
        entries.append(
            {
                "file": file,
                "valid": False,
                "reason": tamper.reason,
                "description": tamper.description,
                "from": f"valid-{tamper.base}.json",
            }
        )
    manifest = {
        "format": "sparkchain-proof-bundle-vectors",
        "version": 1,
        "genesis": GENESIS_FILE,
        "vectors": entries,
    }
    files[MANIFEST_FILE] = _json_text(manifest)
    for file, text in files.items():
        (output / file).write_text(text, encoding="utf-8")
    return sorted(files)


def _set_size(bundle: Bundle, genesis: Genesis) -> int:
    """How many validators sign the bundle's height: the last set changed before it."""
    height = bundle["header"]["view"]["height"]
    size = len(genesis.validators)
    for change in bundle["validator_changes"]:
        if change["header"]["view"]["height"] + 1 <= height:
            size = len(change["validators"])
    return size


def _json_text(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="write the proof-bundle test vectors")
    parser.add_argument("--output", type=Path, default=Path("tests/vectors"))
    args = parser.parse_args()
    for file in write_vectors(args.output):
        print(args.output / file)


if __name__ == "__main__":
    main()
