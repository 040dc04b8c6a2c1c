"""The first `spark` commands: keys new|list|show and id bid|check, run as a user would."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sparkchain.cli.main import main
from sparkchain.identifiers.bid import bid_from_public_key
from tests.helpers.cli import spark

pytestmark = pytest.mark.usefixtures("spark_home")  # every test: a SPARK_HOME of its own

# Published pair from CAICT's BIF-RFCs, RFC-008 (BIDComm), §5.3.4 example message
RFC008_PUBLIC_KEY_TEXT = "b06566014b06ef94821e325e047a880b328aa9276060b97d6b148e16199ab1b1edff11"
RFC008_BID = "did:bid:efCB2YndSDRHrMF7mTbGVkpbatAdybKW"


# --- keys -----------------------------------------------------------------------------------


def test_keys_new_list_show(capsys: pytest.CaptureFixture[str], spark_home: Path) -> None:
    code, out, err = spark(capsys, "keys", "list")
    assert (code, err) == (0, "")
    assert "no keys" in out

    code, out, _ = spark(capsys, "keys", "new", "alice", "--json")
    assert code == 0
    created = json.loads(out)
    path = spark_home / "keys" / "alice.pem"
    assert created["path"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert created["bid"] == bid_from_public_key(bytes.fromhex(created["public_key"]))

    code, out, _ = spark(capsys, "keys", "show", "alice")
    assert code == 0
    assert f"bid:        {created['bid']}" in out
    assert f"public key: {created['public_key']}" in out

    spark(capsys, "keys", "new", "bob")
    code, out, _ = spark(capsys, "keys", "list")
    assert (code, out.split()) == (0, ["alice", "bob"])
    code, out, _ = spark(capsys, "keys", "list", "--json")
    assert [k["name"] for k in json.loads(out)] == ["alice", "bob"]


def test_keys_new_refuses_to_overwrite(capsys: pytest.CaptureFixture[str]) -> None:
    spark(capsys, "keys", "new", "alice")
    code, out, err = spark(capsys, "keys", "new", "alice")
    assert code == 1
    assert out == ""
    assert err.startswith("error: EXISTS: ") and err.count("\n") == 1


def test_keys_show_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = spark(capsys, "keys", "show", "nobody")
    assert code == 1
    assert err.startswith("error: NOT_FOUND: no key named 'nobody'") and err.count("\n") == 1


def test_keys_bad_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = spark(capsys, "keys", "new", "../escape")
    assert code == 2
    assert err.startswith("error: INVALID_ARGUMENT: ")


def test_passphrase_protected_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, spark_home: Path
) -> None:
    monkeypatch.setenv("SPARK_KEY_PASSPHRASE", "s3cret")
    code, out, _ = spark(capsys, "keys", "new", "vault", "--passphrase", "--json")
    assert code == 0
    assert b"ENCRYPTED" in (spark_home / "keys" / "vault.pem").read_bytes()
    public_key = json.loads(out)["public_key"]

    code, out, _ = spark(capsys, "keys", "show", "vault", "--json")
    assert (code, json.loads(out)["public_key"]) == (0, public_key)

    monkeypatch.setenv("SPARK_KEY_PASSPHRASE", "wrong")
    code, out, err = spark(capsys, "keys", "show", "vault")
    assert (code, out) == (1, "")
    assert err.startswith("error: INVALID_KEY: ") and err.count("\n") == 1


# --- id bid -------------------------------------------------------------------------------


def test_id_bid_of_spark_encoded_and_raw_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert spark(capsys, "id", "bid", RFC008_PUBLIC_KEY_TEXT) == (0, RFC008_BID + "\n", "")
    raw = RFC008_PUBLIC_KEY_TEXT[6:]
    assert spark(capsys, "id", "bid", raw) == (0, RFC008_BID + "\n", "")

    code, out, _ = spark(capsys, "id", "bid", raw, "--acsn", "ab12", "--json")
    assert code == 0
    assert json.loads(out) == {
        "bid": "did:bid:ab12:" + RFC008_BID[len("did:bid:") :],
        "public_key": raw,
        "acsn": "ab12",
    }


@pytest.mark.parametrize(
    ("argv", "code_name"),
    [
        (["id", "bid", "xyz"], "INVALID_KEY"),
        (["id", "bid", "00" * 31], "INVALID_KEY"),
        (["id", "bid", "00" * 32, "--acsn", "ABCD"], "INVALID_BID"),
    ],
)
def test_id_bid_errors(capsys: pytest.CaptureFixture[str], argv: list[str], code_name: str) -> None:
    code, out, err = spark(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {code_name}: ") and err.count("\n") == 1


# --- id check -----------------------------------------------------------------------------


def test_id_check_shows_key_prefix_chain_and_schemes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = spark(
        capsys,
        "id",
        "check",
        "88.608.24161301/sn-0001",
        "88.608/4006381333931",
        "88.608/01/09506000134352/10/ABC",
        "88/1.2.840.113549",
    )
    assert (code, err) == (0, "")
    assert "key:     88.608.24161301/SN-0001" in out
    assert "prefix:  88.608.24161301 -> 88.608 -> 88" in out
    assert "scheme:  none recognised" in out
    assert "GTIN-13 4006381333931 (check digit 1 correct)" in out
    assert "(01)09506000134352(10)ABC" in out
    assert "OID 1.2.840.113549" in out


def test_id_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = spark(
        capsys, "id", "check", "--json", "88.608/https://id.gs1.org/01/09506000134352/21/7", "88"
    )
    assert code == 0
    link, prefix = json.loads(out)
    assert link["valid"] and link["kind"] == "identifier"
    assert link["prefix_chain"] == ["88.608", "88"]
    (scheme,) = link["schemes"]
    assert scheme["scheme"] == "gs1-digital-link" and scheme["valid"]
    assert scheme["fields"]["gtin"] == "09506000134352"
    assert scheme["fields"]["serial"] == "7"
    assert (prefix["kind"], prefix["key"], prefix["prefix_chain"]) == ("prefix", "88", ["88"])


def test_id_check_reports_each_bad_id_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = spark(
        capsys, "id", "check", "88.608/ok", "88.608/", "88..1/x", "88/a\x07b", "did:bid:efX"
    )
    assert code == 1
    assert "88.608/ok" in out
    lines = err.splitlines()
    assert len(lines) == 4
    assert lines[0] == "error: INVALID_IDENTIFIER: '88.608/': suffix is empty"
    assert "prefix segment 2 is empty" in lines[1]
    assert "control character U+0007 at byte 1" in lines[2]
    assert lines[3].startswith("error: INVALID_BID: 'did:bid:efX': ")


def test_id_check_json_includes_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = spark(capsys, "id", "check", "--json", "88.608/")
    assert code == 1
    (result,) = json.loads(out)
    assert result == {
        "input": "88.608/",
        "valid": False,
        "error": {"code": "INVALID_IDENTIFIER", "message": "suffix is empty"},
    }


def test_wrong_gtin_check_digit_is_reported_and_fails_only_when_strict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = spark(capsys, "id", "check", "88.608/4006381333932")
    assert (code, err) == (0, "")
    assert "check digit 2 at position 12, expected 1" in out
    code, _, err = spark(capsys, "id", "check", "--strict", "88.608/4006381333932")
    assert code == 1
    assert err.startswith("error: INVALID_GTIN: '88.608/4006381333932': ")


# --- help and entry point -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["keys"],
        ["keys", "new"],
        ["keys", "list"],
        ["keys", "show"],
        ["id"],
        ["id", "bid"],
        ["id", "check"],
    ],
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: spark")


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["id"])
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_installed_spark_console_script_runs() -> None:
    script = Path(sys.executable).with_name("spark")
    executable = str(script) if script.exists() else shutil.which("spark")
    assert executable, "the `spark` console script is not installed (run `make install`)"
    run = subprocess.run(
        [executable, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "usage: spark" in run.stdout
    assert "keys" in run.stdout and "id" in run.stdout
