"""`spark validators propose` and `sign` offline: the proposal file carries one body that
every approval signs, and malformed input is refused with a message naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkchain.cli.validators_cmd import read_proposal
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tx import check_governance_tx
from sparkchain.node import keystore
from tests.helpers.chain import key
from tests.helpers.cli import spark

NEW = key("validator5").public_key.hex()


def _propose(capsys: pytest.CaptureFixture[str], out: Path, *change: str) -> tuple[int, str]:
    code, _, err = spark(
        capsys, "validators", "propose", *change, "--out", str(out), "--chain-id", "test-chain"
    )
    return code, err


def test_two_validators_sign_one_body(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    proposal = tmp_path / "proposal.json"
    code, err = _propose(
        capsys, proposal, "--add", f"node5={NEW}@10.0.0.5:7000", "--remove", "node4",
        "--rotate", f"node2={key('fresh').public_key.hex()}",
    )  # fmt: skip
    assert code == 0, err
    body_before = json.loads(proposal.read_text())["body"]
    for name in ("validator1", "validator2", "validator1"):  # signing twice replaces
        key_file = tmp_path / f"{name}.pem"
        if not key_file.exists():
            keystore.write_key_file(key_file, key(name))
        assert (
            spark(capsys, "validators", "sign", str(proposal), "--key-file", str(key_file))[0] == 0
        )
    data = json.loads(proposal.read_text())
    assert data["body"] == body_before
    assert data["update"]["add"] == [
        {"name": "node5", "public_key": NEW, "address": "10.0.0.5:7000"}
    ]
    signed, body = read_proposal(proposal)
    assert [a.validator for a in signed.approvals] == [
        key("validator2").public_key,
        key("validator1").public_key,
    ]
    assert check_governance_tx(signed, "test-chain") == body
    assert list(body.update_validators.remove) == ["node4"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("--add", "node5=abc@h:1"), "--add"),
        (("--rotate", "node2"), "--rotate"),
        ((), "at least one"),
    ],
)
def test_a_malformed_change_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: tuple[str, ...], named: str
) -> None:
    code, err = _propose(capsys, tmp_path / "p.json", *change)
    assert code != 0 and "INVALID_ARGUMENT" in err and named in err
    assert not (tmp_path / "p.json").exists()


def test_a_tampered_body_is_refused_when_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    proposal = tmp_path / "proposal.json"
    assert _propose(capsys, proposal, "--remove", "node4")[0] == 0
    key_file = tmp_path / "v1.pem"
    keystore.write_key_file(key_file, key("validator1"))
    spark(capsys, "validators", "sign", str(proposal), "--key-file", str(key_file))
    other = tmp_path / "other.json"
    assert _propose(capsys, other, "--remove", "node3")[0] == 0
    data = json.loads(proposal.read_text())
    data["body"] = json.loads(other.read_text())["body"]  # node3 instead, same approval
    proposal.write_text(json.dumps(data))
    with pytest.raises(SparkError) as caught:
        read_proposal(proposal)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    assert str(proposal) in caught.value.message
