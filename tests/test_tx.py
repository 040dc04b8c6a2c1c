"""Signed transaction envelopes (identifiers/tx.py, DESIGN §4)."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.limits import MAX_TX_BYTES
from sparkchain.identifiers.tags import SIGNING_TAGS, TX_TAG
from sparkchain.identifiers.tx import (
    DEFAULT_TX_LIFETIME_MS,
    TxBuilder,
    check_signed_tx,
    sign_body,
    sign_body_bytes,
    signature_is_valid,
    tx_id,
    value,
)
from sparkchain.proto import types_pb2 as pb

DETERMINISTIC = settings(derandomize=True, deadline=None)
CHAIN = "sparkchain-test"
NOW_MS = 1_764_000_000_000
KEY = SigningKey.from_seed(bytes(range(32)))
OTHER_KEY = SigningKey.from_seed(bytes(range(1, 33)))


def registration(chain_id: str = CHAIN, rng: random.Random | None = None) -> pb.SignedTx:
    return TxBuilder(chain_id, KEY, rng or random.Random(1)).register(
        "88.608/SN-0001", [value(1, "URL", "https://example.com/p/1")], now_ms=NOW_MS
    )


def flipped(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_a_signed_tx_checks_and_its_id_is_the_hash_of_the_body() -> None:
    signed = registration()
    body = check_signed_tx(signed, CHAIN)
    assert body.register.identifier == "88.608/SN-0001"
    assert body.expires_at_ms == NOW_MS + DEFAULT_TX_LIFETIME_MS
    assert body.signer == KEY.public_key
    assert tx_id(signed) == hashlib.sha256(signed.body).digest()


def test_flipping_any_bit_of_the_body_fails() -> None:
    signed = registration()
    body = pb.TxBody.FromString(signed.body)
    for bit in range(len(signed.body) * 8):
        tampered = pb.SignedTx(body=flipped(signed.body, bit), signature=signed.signature)
        assert not signature_is_valid(tampered, body), bit
        with pytest.raises(SparkError) as caught:
            check_signed_tx(tampered, CHAIN)
        # a flip may also break the encoding, which is refused before the signature
        assert caught.value.code in (ErrorCode.BAD_SIGNATURE, ErrorCode.INVALID_TX), bit


def test_flipping_any_bit_of_the_signature_fails() -> None:
    signed = registration()
    body = pb.TxBody.FromString(signed.body)
    for bit in range(len(signed.signature) * 8):
        tampered = pb.SignedTx(body=signed.body, signature=flipped(signed.signature, bit))
        assert not signature_is_valid(tampered, body), bit
        with pytest.raises(SparkError) as caught:
            check_signed_tx(tampered, CHAIN)
        assert caught.value.code is ErrorCode.BAD_SIGNATURE, bit


def test_flipping_any_bit_of_the_signer_in_the_body_fails() -> None:
    signed = registration()
    at = signed.body.index(KEY.public_key) * 8
    for bit in range(at, at + len(KEY.public_key) * 8):
        tampered = pb.SignedTx(body=flipped(signed.body, bit), signature=signed.signature)
        with pytest.raises(SparkError) as caught:
            check_signed_tx(tampered, CHAIN)
        assert caught.value.code is ErrorCode.BAD_SIGNATURE, bit


def test_a_tx_for_another_chain_is_wrong_chain() -> None:
    signed = registration(chain_id="another-chain")
    assert check_signed_tx(signed).chain_id == "another-chain"  # no chain given: not checked
    with pytest.raises(SparkError) as caught:
        check_signed_tx(signed, CHAIN)
    assert caught.value.code is ErrorCode.WRONG_CHAIN
    assert "another-chain" in caught.value.message


@pytest.mark.parametrize("tag", [t for t in SIGNING_TAGS if t != TX_TAG])
def test_a_signature_made_under_another_domain_tag_fails(tag: bytes) -> None:
    body = registration().body
    signed = pb.SignedTx(body=body, signature=KEY.sign(tag, body))
    assert not signature_is_valid(signed, pb.TxBody.FromString(body))
    with pytest.raises(SparkError) as caught:
        check_signed_tx(signed, CHAIN)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE


def canonical_body(operation: pb.Register | pb.Revoke) -> bytes:
    body = pb.TxBody(chain_id=CHAIN, nonce=7, expires_at_ms=NOW_MS)
    getattr(body, type(operation).__name__.lower()).CopyFrom(operation)
    return body.SerializeToString()


def unknown_field(number: int = 100) -> bytes:
    """A varint field `number` = 1, which no message of types.proto defines."""
    tag = number << 3
    return bytes([0x80 | (tag & 0x7F), tag >> 7, 1])


def refused_as_non_canonical(body_bytes: bytes) -> str:
    with pytest.raises(SparkError) as caught:
        check_signed_tx(sign_body_bytes(body_bytes, KEY), CHAIN)
    assert caught.value.code is ErrorCode.INVALID_TX
    return caught.value.message


def test_register_bytes_followed_by_revoke_bytes_are_refused_not_run_as_the_revoke() -> None:
    # protobuf keeps the last member of a oneof: the signer saw a Register, the chain would run
    # the Revoke (finding 10)
    register = canonical_body(pb.Register(identifier="88.608/SN-0001"))
    revoke = canonical_body(pb.Revoke(identifier="88.608/SN-0001"))
    assert pb.TxBody.FromString(register + revoke).WhichOneof("op") == "revoke"
    message = refused_as_non_canonical(register + revoke)
    assert "2 operations (register, revoke)" in message


def test_a_body_with_unknown_fields_is_refused() -> None:
    top_level = canonical_body(pb.Revoke(identifier="88/x")) + unknown_field()
    assert "unknown field" in refused_as_non_canonical(top_level)
    operation = pb.Register(identifier="88/x").SerializeToString() + unknown_field()
    header = pb.TxBody(chain_id=CHAIN, nonce=7, expires_at_ms=NOW_MS).SerializeToString()
    nested = header + bytes([13 << 3 | 2, len(operation)]) + operation
    assert pb.TxBody.FromString(nested).register.identifier == "88/x"
    assert "unknown field" in refused_as_non_canonical(nested)


def test_a_body_whose_fields_are_out_of_order_is_refused() -> None:
    # the same message, its fields in an order the serializer would not choose: the bytes
    # signed are not the body's one encoding (DESIGN §4)
    header = pb.TxBody(chain_id=CHAIN, nonce=7, expires_at_ms=NOW_MS)
    operation = pb.TxBody()
    operation.revoke.identifier = "88.608/SN-0001"
    body_bytes = operation.SerializeToString() + header.SerializeToString()
    assert pb.TxBody.FromString(body_bytes).SerializeToString() != body_bytes
    assert "not canonical" in refused_as_non_canonical(body_bytes)


def test_a_body_with_a_default_value_written_out_is_refused() -> None:
    # proto3 never writes a zero scalar; a body that does has a second encoding
    explicit_zero_nonce = bytes([2 << 3, 0])
    body_bytes = canonical_body(pb.Revoke(identifier="88/x")) + explicit_zero_nonce
    assert pb.TxBody.FromString(body_bytes).nonce == 0
    assert "not canonical" in refused_as_non_canonical(body_bytes)


def test_the_signature_covers_the_body_as_sent() -> None:
    signed = registration()
    assert signature_is_valid(signed, pb.TxBody.FromString(signed.body))
    assert tx_id(signed) == hashlib.sha256(signed.body).digest()


@pytest.mark.parametrize(
    ("signed", "code"),
    [
        (pb.SignedTx(body=b"\x00" * (MAX_TX_BYTES + 1)), ErrorCode.TOO_LARGE),
        (
            sign_body(pb.TxBody(chain_id=CHAIN, signer=bytes(31), revoke=pb.Revoke()), KEY),
            ErrorCode.INVALID_TX,
        ),
        (pb.SignedTx(body=b"", signature=bytes(63)), ErrorCode.BAD_SIGNATURE),
        (sign_body_bytes(b"\xff\xff\xff", KEY), ErrorCode.INVALID_TX),
        (sign_body_bytes(pb.TxBody(chain_id=CHAIN).SerializeToString(), KEY), ErrorCode.INVALID_TX),
    ],
)
def test_malformed_envelopes_are_refused_with_their_code(
    signed: pb.SignedTx, code: ErrorCode
) -> None:
    with pytest.raises(SparkError) as caught:
        check_signed_tx(signed, CHAIN)
    assert caught.value.code is code


@DETERMINISTIC
@given(st.binary(max_size=200))
def test_random_signed_bodies_only_ever_raise_spark_errors(body_bytes: bytes) -> None:
    signed = sign_body_bytes(body_bytes, KEY)
    try:
        body = check_signed_tx(signed, CHAIN)
    except SparkError as exc:
        assert exc.code in (ErrorCode.INVALID_TX, ErrorCode.WRONG_CHAIN)
    else:
        assert body.chain_id == CHAIN


def test_builder_sets_each_operation() -> None:
    builder = TxBuilder(CHAIN, KEY, random.Random(2))
    built = {
        "create_prefix": builder.create_prefix("88.608", "did:bid:efX", now_ms=NOW_MS),
        "set_registrars": builder.set_registrars("88.608", ["a"], ["b"], now_ms=NOW_MS),
        "transfer_prefix": builder.transfer_prefix("88.608", "did:bid:efY", now_ms=NOW_MS),
        "register": registration(),
        "register_batch": builder.register_batch(
            "88.608", [("SN-1", [value(1, "URL", b"u")])], now_ms=NOW_MS
        ),
        "update": builder.update(
            "88.608/SN-1", [value(2, "EMAIL", "a@b.c", ttl=60)], [1], now_ms=NOW_MS
        ),
        "transfer": builder.transfer("88.608/SN-1", "did:bid:efZ", now_ms=NOW_MS),
        "revoke": builder.revoke("88.608/SN-1", "recalled", now_ms=NOW_MS, lifetime_ms=5),
    }
    for operation, signed in built.items():
        body = check_signed_tx(signed, CHAIN)
        assert body.WhichOneof("op") == operation
    assert check_signed_tx(built["revoke"]).expires_at_ms == NOW_MS + 5
    update = check_signed_tx(built["update"]).update
    assert update.upsert[0].ttl == 60 and update.upsert[0].data == b"a@b.c"
    assert list(update.remove_indexes) == [1]


def test_two_identical_requests_get_different_ids() -> None:
    # random nonces: clients never coordinate sequence numbers (DESIGN §4)
    rng = random.Random(3)
    assert tx_id(registration(rng=rng)) != tx_id(registration(rng=rng))


def test_the_body_names_its_signer_so_another_key_cannot_sign_it() -> None:
    # finding 11: whoever saw a pending body re-signed it with their own key, got it in first
    # and made the real tx fail as DUPLICATE_TX
    signed = registration()
    re_signed = sign_body_bytes(signed.body, OTHER_KEY)
    with pytest.raises(SparkError) as caught:
        check_signed_tx(re_signed, CHAIN)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    assert pb.TxBody.FromString(signed.body).signer == KEY.public_key


def test_a_copy_naming_another_signer_is_another_tx() -> None:
    signed = registration()
    copy = pb.TxBody.FromString(signed.body)
    copy.signer = OTHER_KEY.public_key
    copied = sign_body(copy, OTHER_KEY)
    assert check_signed_tx(copied, CHAIN).signer == OTHER_KEY.public_key
    assert tx_id(copied) != tx_id(signed)
