"""SM2 accounts (issue 16): keys, GB/T 32918 signatures checked against the standard's
formulas written out here, Spark's `zf` BIDs, and txs signed by SM2 keys (identifiers/sm2.py,
identifiers/accounts.py, identifiers/bid.py, identifiers/tx.py)."""

from __future__ import annotations

import random
import stat
from pathlib import Path

import pytest

from sparkchain.identifiers import accounts, sm2
from sparkchain.identifiers.bid import bid_from_public_key, parse_bid, parse_public_key_text
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import sm3
from sparkchain.identifiers.tags import TX_TAG, VOTE_TAG
from sparkchain.identifiers.tx import TxBuilder, check_signed_tx, sign_body
from sparkchain.node import keystore
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import CHAIN_ID, URL_VALUE, RulesChain, bid_of, sm2_key

# GB/T 32918.5-2017: the recommended curve y^2 = x^3 + ax + b over Fp, base point G, order n
P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
A = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
GX = int("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", 16)
GY = int("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", 16)
DEFAULT_USER_ID = b"1234567812345678"

# issue 16: Spark's encoding (b0 7a 66 + 04 || X || Y) of an SM2 key and its BID
SPARK_SM2_KEY = (
    "b07a66045197ea4f790e74b3614f771ea5caba335e14c145d0ef02f65710395334078fee0ae302a0ecf338b24"
    "74fea96ddafdfcb3fa9269a6165b2caf28c9ca06b14703f"
)
SPARK_SM2_BID = "did:bid:zf5EHbHLDDEgY5rA2hnwp5YPhaw9iUPu"

Point = tuple[int, int] | None


def _add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _mul(k: int, point: Point) -> Point:
    result: Point = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _e(public_key: bytes, message: bytes) -> int:
    """GB/T 32918.2 §5.5 and §6.1: e = SM3(ZA || M), ZA = SM3(ENTL || ID || a || b || G || PA)."""
    entl = (len(DEFAULT_USER_ID) * 8).to_bytes(2, "big")
    curve = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))
    za = sm3(entl + DEFAULT_USER_ID + curve + public_key[1:])
    return int.from_bytes(sm3(za + message), "big")


def standard_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """GB/T 32918.2 §7.1, written out from the standard (independent of any library)."""
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    t = (r + s) % N
    if t == 0:
        return False
    pa = (int.from_bytes(public_key[1:33], "big"), int.from_bytes(public_key[33:], "big"))
    point = _add(_mul(s, (GX, GY)), _mul(t, pa))
    assert point is not None
    return (_e(public_key, message) + point[0]) % N == r


def standard_sign(private: int, public_key: bytes, message: bytes, k: int) -> bytes:
    """GB/T 32918.2 §6.1 with a given k."""
    point = _mul(k, (GX, GY))
    assert point is not None
    r = (_e(public_key, message) + point[0]) % N
    s = pow(1 + private, -1, N) * (k - r * private) % N
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_library_signatures_verify_by_the_standards_formulas() -> None:
    key = sm2_key("alice")
    for message in (b"", b"abc", b"x" * 300):
        signature = key.sign(TX_TAG, message)
        assert standard_verify(key.public_key, TX_TAG + message, signature)
        assert not standard_verify(key.public_key, TX_TAG + message + b"!", signature)


def test_signatures_made_by_the_standards_formulas_verify_with_the_library() -> None:
    private = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
    key = sm2.Sm2SigningKey.from_scalar(private)
    public = _mul(private, (GX, GY))
    assert public is not None
    assert key.public_key == b"\x04" + public[0].to_bytes(32, "big") + public[1].to_bytes(32, "big")
    signature = standard_sign(private, key.public_key, TX_TAG + b"message digest", k=12345)
    assert sm2.verify(key.public_key, TX_TAG, b"message digest", signature)
    assert not sm2.verify(key.public_key, TX_TAG, b"message digesT", signature)


def test_spark_encoded_sm2_key_has_the_known_bid() -> None:
    public_key = parse_public_key_text(SPARK_SM2_KEY)
    assert public_key == bytes.fromhex(SPARK_SM2_KEY[6:])
    assert bid_from_public_key(public_key) == SPARK_SM2_BID
    parsed = parse_bid(SPARK_SM2_BID)
    assert parsed.hash_bytes == sm3(public_key)[10:]
    assert bid_from_public_key(public_key, acsn="ab12") == "did:bid:ab12:" + SPARK_SM2_BID[8:]


def test_sm2_keys_are_zf_bids_and_ed25519_keys_stay_ef() -> None:
    assert bid_of(sm2_key("alice")).startswith("did:bid:zf")
    assert bid_of("alice").startswith("did:bid:ef")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x04" + bytes(64), "not a point on the curve"),
        (b"\x02" + bytes(64), "starting with 04"),
        (b"\x04" + bytes(10), "65 bytes"),
    ],
)
def test_bad_sm2_public_keys_are_invalid_key(raw: bytes, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        sm2.check_public_key(raw)
    assert caught.value.code is ErrorCode.INVALID_KEY
    assert message in caught.value.message


def test_forged_or_misused_sm2_signatures_do_not_verify() -> None:
    key, other = sm2_key("alice"), sm2_key("bob")
    signature = key.sign(TX_TAG, b"body")
    assert sm2.verify(key.public_key, TX_TAG, b"body", signature)
    assert not sm2.verify(other.public_key, TX_TAG, b"body", signature)
    assert not sm2.verify(key.public_key, VOTE_TAG, b"body", signature)  # another purpose
    assert not sm2.verify(key.public_key, TX_TAG, b"body", signature[:63])
    assert not sm2.verify(key.public_key, TX_TAG, b"body", bytes(64))  # r = s = 0
    assert not sm2.verify(key.public_key, TX_TAG, b"body", N.to_bytes(32, "big") * 2)
    assert not sm2.verify(b"\x04" + bytes(64), TX_TAG, b"body", signature)


def test_sm2_key_files_round_trip_with_mode_0600_and_passphrase(tmp_path: Path) -> None:
    key = sm2.Sm2SigningKey.generate()
    plain, locked = tmp_path / "plain.pem", tmp_path / "locked.pem"
    keystore.write_key_file(plain, key)
    keystore.write_key_file(locked, key, b"secret")
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    assert keystore.read_account_key_file(plain).public_key == key.public_key
    assert keystore.read_account_key_file(locked, b"secret").public_key == key.public_key
    with pytest.raises(SparkError) as caught:
        keystore.read_account_key_file(locked, b"wrong")
    assert caught.value.code is ErrorCode.INVALID_KEY
    # a node key must be Ed25519: an SM2 file is refused as one
    with pytest.raises(SparkError) as refused:
        keystore.read_key_file(plain)
    assert "Ed25519" in refused.value.message


def test_tx_names_sm2_beside_the_signer_and_verifies() -> None:
    key = sm2_key("alice")
    signed = TxBuilder(CHAIN_ID, key, random.Random(1)).register("88/a", now_ms=1)
    body = check_signed_tx(signed, CHAIN_ID)
    assert body.signer_algorithm == pb.SM2
    assert body.signer == key.public_key


def test_ed25519_tx_bodies_keep_their_bytes_and_an_explicit_default_is_refused() -> None:
    from tests.helpers.chain import key as ed_key

    signer = ed_key("alice")
    signed = TxBuilder(CHAIN_ID, signer, random.Random(1)).register("88/a", now_ms=1)
    nonce = random.Random(1).getrandbits(64)
    # the body as it was built before signer_algorithm existed
    before = pb.TxBody(
        chain_id=CHAIN_ID,
        signer=signer.public_key,
        nonce=nonce,
        expires_at_ms=signed_expiry(signed),
    )
    before.register.identifier = "88/a"
    assert signed.body == before.SerializeToString()
    # field 5 written with its default value is not the canonical encoding
    padded = signed.body + b"\x28\x00"
    with pytest.raises(SparkError) as caught:
        check_signed_tx(pb.SignedTx(body=padded, signature=signer.sign(TX_TAG, padded)), CHAIN_ID)
    assert caught.value.code is ErrorCode.INVALID_TX
    assert "not canonical" in caught.value.message


def signed_expiry(signed: pb.SignedTx) -> int:
    return pb.TxBody.FromString(signed.body).expires_at_ms


def test_sm2_signer_named_as_ed25519_is_refused() -> None:
    key = sm2_key("alice")
    body = pb.TxBody(chain_id=CHAIN_ID, signer=key.public_key, nonce=1, expires_at_ms=10)
    body.register.identifier = "88/a"
    with pytest.raises(SparkError) as caught:
        check_signed_tx(sign_body(body, key), CHAIN_ID)
    assert caught.value.code is ErrorCode.INVALID_TX
    assert "32-byte ed25519" in caught.value.message


def test_sm2_signature_by_another_key_is_bad_signature() -> None:
    key, other = sm2_key("alice"), sm2_key("mallory")
    body = pb.TxBody(
        chain_id=CHAIN_ID, signer=key.public_key, signer_algorithm=pb.SM2, nonce=1, expires_at_ms=9
    )
    body.register.identifier = "88/a"
    with pytest.raises(SparkError) as caught:
        check_signed_tx(sign_body(body, other), CHAIN_ID)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE


def test_unknown_algorithm_names_are_refused() -> None:
    with pytest.raises(SparkError) as caught:
        accounts.parse_algorithm("rsa")
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert "ed25519, sm2" in caught.value.message


def test_sm2_account_owns_and_registers_under_its_prefix() -> None:
    chain = RulesChain()
    alice = sm2_key("alice")
    acme = chain.signer("acme")
    chain.apply(acme.set_registrars("88", add=[bid_of(alice)], now_ms=chain.now_ms))
    chain.next_block()
    maker = TxBuilder(chain.genesis.chain_id, alice, random.Random(7))
    receipt = chain.apply(maker.register("88/sm2-1", [URL_VALUE], now_ms=chain.now_ms))
    assert receipt.signer == bid_of(alice)
    record = chain.record("88/SM2-1")
    assert record is not None and record.owner == bid_of(alice)
