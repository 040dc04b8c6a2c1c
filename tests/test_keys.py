"""Ed25519 keys: PEM files, passphrases, mode 0600, tagged signatures (identifiers/keys.py,
node/keystore.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import nacl.signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey, verify
from sparkchain.identifiers.tags import PROPOSAL_TAG, SIGNING_TAGS, TX_TAG, VOTE_TAG
from sparkchain.node import keystore

# RFC 8032 §7.1, TEST 1
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_EMPTY_MESSAGE_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def seeded_key(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n]) * 32)


def test_rfc8032_seed_gives_the_published_public_key_and_signature() -> None:
    key = SigningKey.from_seed(RFC8032_SEED)
    assert key.public_key == RFC8032_PUBLIC
    # the raw Ed25519 signature of the empty message, so the library is plain RFC 8032
    assert key.private_key.sign(b"") == RFC8032_EMPTY_MESSAGE_SIGNATURE


def test_signature_covers_tag_then_message_exactly() -> None:
    # an independent implementation (libsodium via PyNaCl) signing TX_TAG || message
    key = SigningKey.from_seed(RFC8032_SEED)
    expected = nacl.signing.SigningKey(RFC8032_SEED).sign(TX_TAG + b"body").signature
    assert key.sign(TX_TAG, b"body") == expected
    assert verify(key.public_key, TX_TAG, b"body", expected)


def test_signature_for_one_tag_fails_under_every_other_tag() -> None:
    key = seeded_key(1)
    for tag in SIGNING_TAGS:
        signature = key.sign(tag, b"message")
        for other in SIGNING_TAGS:
            assert verify(key.public_key, other, b"message", signature) is (other == tag)


def test_signature_fails_for_another_key_or_message() -> None:
    key, other = seeded_key(1), seeded_key(2)
    signature = key.sign(VOTE_TAG, b"message")
    assert not verify(other.public_key, VOTE_TAG, b"message", signature)
    assert not verify(key.public_key, VOTE_TAG, b"messagf", signature)
    # the tag boundary is part of what is signed: moving bytes across it fails
    assert not verify(key.public_key, PROPOSAL_TAG, b"message", signature)


def test_unknown_tags_are_refused() -> None:
    key = seeded_key(1)
    with pytest.raises(SparkError) as caught:
        key.sign(b"spark/unknown/v1", b"x")
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    with pytest.raises(SparkError):
        verify(key.public_key, b"", b"x", bytes(64))


def test_malformed_keys_and_signatures_do_not_verify() -> None:
    key = seeded_key(1)
    signature = key.sign(TX_TAG, b"m")
    assert not verify(key.public_key[:31], TX_TAG, b"m", signature)
    assert not verify(key.public_key, TX_TAG, b"m", signature[:63])
    assert not verify(bytes(32), TX_TAG, b"m", signature)


def test_from_seed_is_deterministic_and_checks_length() -> None:
    assert seeded_key(7).public_key == seeded_key(7).public_key != seeded_key(8).public_key
    with pytest.raises(SparkError) as caught:
        SigningKey.from_seed(bytes(31))
    assert caught.value.code is ErrorCode.INVALID_KEY


# --- PEM ----------------------------------------------------------------------------------


def test_pem_round_trip() -> None:
    key = seeded_key(3)
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SigningKey.from_pem(pem).public_key == key.public_key


def test_passphrase_encrypted_pem_round_trip() -> None:
    key = seeded_key(4)
    pem = key.to_pem(b"correct horse")
    assert b"ENCRYPTED" in pem
    assert key.private_key.private_bytes_raw() not in pem
    assert SigningKey.from_pem(pem, b"correct horse").public_key == key.public_key


@pytest.mark.parametrize("passphrase", [b"wrong", None])
def test_wrong_or_missing_passphrase_is_invalid_key(passphrase: bytes | None) -> None:
    pem = seeded_key(4).to_pem(b"correct horse")
    with pytest.raises(SparkError) as caught:
        SigningKey.from_pem(pem, passphrase)
    assert caught.value.code is ErrorCode.INVALID_KEY


def test_passphrase_for_an_unencrypted_key_is_invalid_key() -> None:
    with pytest.raises(SparkError) as caught:
        SigningKey.from_pem(seeded_key(4).to_pem(), b"unneeded")
    assert caught.value.code is ErrorCode.INVALID_KEY


def test_garbage_and_foreign_keys_are_invalid_key() -> None:
    with pytest.raises(SparkError) as caught:
        SigningKey.from_pem(b"not a pem at all")
    assert caught.value.code is ErrorCode.INVALID_KEY
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SparkError, match="not an Ed25519 private key") as caught:
        SigningKey.from_pem(ec_pem)
    assert caught.value.code is ErrorCode.INVALID_KEY


# --- key files ------------------------------------------------------------------------------


def test_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    path = keystore.key_path("alice", tmp_path)
    keystore.write_key_file(path, seeded_key(5))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert keystore.read_key_file(path).public_key == seeded_key(5).public_key
    assert keystore.list_keys(tmp_path) == ["alice"]


def test_encrypted_key_file_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    path = keystore.key_path("bob", tmp_path)
    keystore.write_key_file(path, seeded_key(6), b"s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore.read_key_file(path, b"s3cret").public_key == seeded_key(6).public_key
    with pytest.raises(SparkError) as caught:
        keystore.read_key_file(path, b"wrong")
    assert caught.value.code is ErrorCode.INVALID_KEY
    assert str(path) in caught.value.message


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = keystore.key_path("carol", tmp_path)
    keystore.write_key_file(path, seeded_key(7))
    with pytest.raises(SparkError) as caught:
        keystore.write_key_file(path, seeded_key(8))
    assert caught.value.code is ErrorCode.EXISTS
    assert keystore.read_key_file(path).public_key == seeded_key(7).public_key


def test_missing_key_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(SparkError) as caught:
        keystore.read_key_file(keystore.key_path("nobody", tmp_path))
    assert caught.value.code is ErrorCode.NOT_FOUND
    assert keystore.list_keys(tmp_path) == []


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_key_names_cannot_escape_the_key_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(SparkError) as caught:
        keystore.key_path(name, tmp_path)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_spark_home_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    assert keystore.key_dir() == tmp_path / "keys"
