"""The committed proof-bundle vectors (tests/vectors/, `make vectors`) are current, and the
Python verifier and `spark verify` judge each as the manifest says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from sparkchain.ledger.bundle import parse_bundle_json, verify_bundle
from sparkchain.ledger.genesis import Genesis, parse_genesis
from sparkchain.ledger.proof import ProofError
from sparkchain.node.gateway_proof import bundle_schema
from sparkchain.node.openapi import openapi_document
from tests.helpers.vectors import MANIFEST_FILE, TAMPERS, write_vectors

VECTORS = Path(__file__).resolve().parent / "vectors"


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((VECTORS / MANIFEST_FILE).read_text(encoding="utf-8"))
    return manifest


def _genesis() -> Genesis:
    return parse_genesis((VECTORS / _manifest()["genesis"]).read_bytes())


def test_regenerated_vectors_are_the_committed_ones(tmp_path: Path) -> None:
    written = write_vectors(tmp_path)
    committed = sorted(path.name for path in VECTORS.iterdir())
    assert written == committed, "run `make vectors` and commit tests/vectors/"
    for name in written:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), (
            f"tests/vectors/{name} is stale: run `make vectors` and commit it"
        )


def test_the_manifest_lists_every_file_valid_ones_and_every_tamper() -> None:
    manifest = _manifest()
    files = {entry["file"] for entry in manifest["vectors"]}
    assert files | {MANIFEST_FILE, manifest["genesis"]} == {p.name for p in VECTORS.iterdir()}
    valid = [entry for entry in manifest["vectors"] if entry["valid"]]
    assert {(entry["present"], entry["identifier"]) for entry in valid} == {
        (True, "88/Widget-1"),
        (True, "88/Gone-1"),
        (False, "88/Missing-1"),
        (True, "88/Widget-2"),  # on the chain whose validator set changes twice
    }
    assert [entry["validator_changes"] for entry in valid] == [0, 0, 0, 2]
    assert len(manifest["vectors"]) == len(valid) + len(TAMPERS)


@pytest.mark.parametrize("entry", _manifest()["vectors"], ids=lambda entry: entry["file"])
def test_the_python_verifier_judges_each_vector_as_the_manifest_says(
    entry: dict[str, Any],
) -> None:
    bundle = parse_bundle_json((VECTORS / entry["file"]).read_bytes())
    if entry["valid"]:
        verified = verify_bundle(bundle, _genesis())
        assert verified.height == entry["height"]
        assert (verified.signers, verified.validators) == (entry["signers"], entry["validators"])
        assert (verified.record is not None) == entry["present"]
        return
    with pytest.raises(ProofError) as refused:
        verify_bundle(bundle, _genesis())
    assert refused.value.reason == entry["reason"], refused.value.message


def test_the_valid_vectors_show_text_binary_and_revoked_records() -> None:
    present = verify_bundle(
        parse_bundle_json((VECTORS / "valid-present.json").read_bytes()), _genesis()
    )
    assert present.record is not None
    formats = {
        v["data"]["format"]
        for v in json.loads((VECTORS / "valid-present.json").read_text())["record"]["view"][
            "values"
        ]
    }
    assert formats == {"string", "base64"}
    revoked = verify_bundle(
        parse_bundle_json((VECTORS / "valid-revoked.json").read_bytes()), _genesis()
    )
    assert revoked.record is not None and revoked.record.revoke_reason == "recalled"


def _spark_verify(file: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkchain.cli.main",
            "verify",
            str(VECTORS / file),
            "--genesis",
            str(VECTORS / "genesis.json"),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_spark_verify_accepts_a_valid_vector_and_prints_who_vouches() -> None:
    run = _spark_verify("valid-present.json")
    assert run.returncode == 0, run.stderr
    assert "verified at height 3 by 3 of 4 validators" in run.stdout
    assert "https://example.com/widget-1" in run.stdout
    absent = _spark_verify("valid-absent.json", "--json")
    assert absent.returncode == 0, absent.stderr
    answer = json.loads(absent.stdout)
    assert answer["verified"] is True and answer["present"] is False and answer["height"] == 3


def test_spark_verify_refuses_a_tampered_vector_naming_the_reason() -> None:
    run = _spark_verify("tampered-record-view-url.json")
    assert run.returncode == 1
    assert "verification FAILED" in run.stderr and "VIEW_MISMATCH" in run.stderr
    assert "values[0].data.value" in run.stderr
    as_json = _spark_verify("tampered-too-few-signers.json", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["reason"] == "TOO_FEW_SIGNERS"


def test_spark_verify_follows_the_validator_set_changes_from_the_genesis() -> None:
    run = _spark_verify("valid-changes.json")
    assert run.returncode == 0, run.stderr
    assert "verified at height 5 by 3 of 4 validators" in run.stdout
    assert "https://example.com/widget-2" in run.stdout
    dropped = _spark_verify("tampered-change-dropped.json", "--json")
    assert dropped.returncode == 1
    assert json.loads(dropped.stdout)["reason"] == "WRONG_VALIDATORS"


def test_spark_verify_without_genesis_is_a_usage_error() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkchain.cli.main",
            "verify",
            str(VECTORS / "valid-present.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--genesis" in run.stderr


def test_the_openapi_bundle_schema_accepts_the_valid_vectors() -> None:
    validator = jsonschema_rs.Draft202012Validator(bundle_schema())
    for entry in _manifest()["vectors"]:
        bundle = json.loads((VECTORS / entry["file"]).read_text(encoding="utf-8"))
        if entry["valid"]:
            assert validator.is_valid(bundle), entry["file"]
    unknown = json.loads((VECTORS / "tampered-unknown-field.json").read_text(encoding="utf-8"))
    assert not validator.is_valid(unknown)
    responses = openapi_document()["paths"]["/api/handles/{handle}"]["get"]["responses"]
    for status, response in responses.items():
        assert response["content"]["application/json"]["schema"], status
    assert responses["200"]["content"]["application/json"]["schema"]["properties"]["proof"]
