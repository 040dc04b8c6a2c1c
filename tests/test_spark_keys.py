"""Spark-format private keys (`priSPK…`, identifiers/keys.py) and `spark keys import|export`."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.bid import base58_encode, bid_from_public_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import (
    SPARK_PRIVATE_KEY_PREFIX,
    SigningKey,
    parse_spark_private_key,
)
from sparkchain.node import keystore
from tests.helpers.cli import spark

# the known answer of the issue: a key Spark's SDK printed, and the BID Spark shows for it
SPARK_PRIVATE_KEY = "priSPKrSftQVRWM33dWxxSmwhRX7ArgyUmwV3pXun79QKsQkW2"
SPARK_BID = "did:bid:ef28Wz8twCynVe6PAnamLYCAFJYgJSnMh"


def test_the_known_spark_key_has_the_bid_spark_shows() -> None:
    key = SigningKey.from_spark_private_key(SPARK_PRIVATE_KEY)
    assert bid_from_public_key(key.public_key) == SPARK_BID
    assert key.to_spark_private_key() == SPARK_PRIVATE_KEY


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_seed_round_trips_through_the_spark_form(seed: bytes) -> None:
    key = SigningKey.from_seed(seed)
    text = key.to_spark_private_key()
    assert text.startswith("priSPK")
    assert parse_spark_private_key(text) == seed
    assert SigningKey.from_spark_private_key(text).public_key == key.public_key


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "starts with 'priSPK'"),
        ("PriSPKrSftQVRWM33dWxxSmwhRX7ArgyUmwV3pXun79QKsQkW2", "starts with 'priSPK'"),
        ("did:bid:ef28Wz8twCynVe6PAnamLYCAFJYgJSnMh", "starts with 'priSPK'"),
        ("priSPKrSftQVRWM33dWxxSmwhRX7ArgyUmwV3pXun79QKsQkW", "is 49 characters, expected 50"),
        (SPARK_PRIVATE_KEY + "2", "is 51 characters, expected 50"),
        ("priSPKrSftQVRWM33dWxxSmwhRX7ArgyUmwV3pXun79QKsQk0W", "character '0' at position 48"),
        ("priSPKrSftQVRWM33dWxxSmwhRX7ArgyUmwV3pXun79QKsQklW", "character 'l' at position 48"),
        (
            base58_encode(SPARK_PRIVATE_KEY_PREFIX[:3] + b"sf" + bytes(32)),
            "key type is b'sf'",
        ),
    ],
)
def test_malformed_spark_keys_get_a_precise_error(text: str, says: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_spark_private_key(text)
    assert caught.value.code is ErrorCode.INVALID_KEY
    assert says in caught.value.message


def test_a_wrong_three_byte_prefix_is_named() -> None:
    # 0x18 0x9e 0x98 prints as "priL…", 50 characters like a Spark key
    text = base58_encode(bytes([0x18, 0x9E, 0x98]) + b"ef" + bytes(range(32)))
    assert text.startswith("pri") and len(text) == 50
    with pytest.raises(SparkError, match="prefix is 189e98, expected 189e99"):
        parse_spark_private_key(text)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    monkeypatch.delenv("SPARK_KEY_PASSPHRASE", raising=False)
    return tmp_path


def test_import_stores_the_key_and_show_prints_spark_s_bid(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = spark(
        capsys, "keys", "import", "alice", "--spark-private-key", SPARK_PRIVATE_KEY, "--json"
    )
    assert code == 0 and json.loads(out)["bid"] == SPARK_BID
    path = keystore.key_path("alice", home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()  # stored like any other key
    code, out, _ = spark(capsys, "keys", "show", "alice", "--json")
    assert code == 0 and json.loads(out)["bid"] == SPARK_BID


def test_export_prints_the_spark_form_with_a_warning(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spark(capsys, "keys", "import", "alice", "--spark-private-key", SPARK_PRIVATE_KEY)
    code, out, err = spark(capsys, "keys", "export", "alice", "--format", "spark")
    assert code == 0
    assert out.strip() == SPARK_PRIVATE_KEY
    assert err.startswith("warning: ") and SPARK_BID in err


def test_a_new_key_exports_and_imports_back_to_the_same_bid(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = spark(capsys, "keys", "new", "bob", "--json")
    bid = json.loads(out)["bid"]
    _, exported, _ = spark(capsys, "keys", "export", "bob", "--format", "spark")
    code, out, _ = spark(
        capsys, "keys", "import", "bob2", "--spark-private-key", exported.strip(), "--json"
    )
    assert code == 0 and json.loads(out)["bid"] == bid


def test_an_encrypted_key_exports_only_after_its_passphrase(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARK_KEY_PASSPHRASE", "s3cret")
    code, _, _ = spark(
        capsys, "keys", "import", "carol", "--spark-private-key", SPARK_PRIVATE_KEY, "--passphrase"
    )
    assert code == 0
    assert b"ENCRYPTED" in keystore.key_path("carol", home).read_bytes()
    monkeypatch.setenv("SPARK_KEY_PASSPHRASE", "wrong")
    code, out, err = spark(capsys, "keys", "export", "carol", "--format", "spark")
    assert code == 1 and out == "" and "INVALID_KEY" in err
    monkeypatch.setenv("SPARK_KEY_PASSPHRASE", "s3cret")
    code, out, _ = spark(capsys, "keys", "export", "carol", "--format", "spark")
    assert code == 0 and out.strip() == SPARK_PRIVATE_KEY


def test_import_reads_the_key_from_stdin_with_a_dash(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SPARK_PRIVATE_KEY + "\n"))
    code, out, _ = spark(capsys, "keys", "import", "dave", "--spark-private-key", "-", "--json")
    assert code == 0 and json.loads(out)["bid"] == SPARK_BID


def test_a_malformed_import_is_refused_and_writes_no_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = spark(
        capsys, "keys", "import", "eve", "--spark-private-key", SPARK_PRIVATE_KEY[:-1]
    )
    assert code == 1
    assert "error: INVALID_KEY: Spark private key is 49 characters, expected 50" in err
    assert not keystore.key_path("eve", home).exists()


def test_import_never_overwrites_a_key(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spark(capsys, "keys", "new", "frank")
    before = keystore.key_path("frank", home).read_bytes()
    code, _, err = spark(
        capsys, "keys", "import", "frank", "--spark-private-key", SPARK_PRIVATE_KEY
    )
    assert code == 1 and "EXISTS" in err
    assert keystore.key_path("frank", home).read_bytes() == before


def test_an_sm2_key_is_not_exported_in_the_ed25519_spark_form(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spark(capsys, "keys", "new", "erin", "--algorithm", "sm2")
    code, out, err = spark(capsys, "keys", "export", "erin", "--format", "spark")
    assert code != 0 and out == ""
    assert "INVALID_KEY" in err and "sm2" in err
