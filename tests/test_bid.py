"""Spark-compatible BIDs (identifiers/bid.py, DESIGN §2), checked from first principles."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.bid import (
    SPARK_BASE58_ALPHABET,
    base58_decode,
    base58_encode,
    bid_from_public_key,
    parse_bid,
    parse_public_key_text,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey

DETERMINISTIC = settings(derandomize=True, deadline=None)

BITCOIN_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# RFC 8032 §7.1, TEST 1: secret key and its public key
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
# Published pair from CAICT's BIF-RFCs, RFC-008 (BIDComm), §5.3.4 example message
RFC008_PUBLIC_KEY_TEXT = "b06566014b06ef94821e325e047a880b328aa9276060b97d6b148e16199ab1b1edff11"
RFC008_BID = "did:bid:efCB2YndSDRHrMF7mTbGVkpbatAdybKW"

public_keys = st.binary(min_size=32, max_size=32)
acsns = st.none() | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=4)


def reference_base58(data: bytes, alphabet: str) -> str:
    """Schoolbook base conversion, digit by digit (unlike the module's big-integer way)."""
    digits: list[int] = []  # base-58 digits, least significant first
    for byte in data:
        carry = byte
        for i, digit in enumerate(digits):
            carry += digit * 256
            digits[i] = carry % 58
            carry //= 58
        while carry:
            digits.append(carry % 58)
            carry //= 58
    zeros = len(data) - len(data.lstrip(b"\0"))
    return alphabet[0] * zeros + "".join(alphabet[d] for d in reversed(digits))


def reference_bid(public_key: bytes, acsn: str | None = None) -> str:
    body = hashlib.sha256(public_key).digest()[10:32]
    middle = f"{acsn}:" if acsn else ""
    return "did:bid:" + middle + "ef" + reference_base58(body, SPARK_BASE58_ALPHABET)


def test_spark_alphabet_swaps_exactly_b_and_u_against_bitcoin() -> None:
    swapped = BITCOIN_BASE58_ALPHABET.translate(str.maketrans("BbUu", "bBuU"))
    assert swapped == SPARK_BASE58_ALPHABET
    differing = {
        i
        for i, (a, b) in enumerate(zip(BITCOIN_BASE58_ALPHABET, SPARK_BASE58_ALPHABET, strict=True))
        if a != b
    }
    assert {BITCOIN_BASE58_ALPHABET[i] for i in differing} == set("BbUu")
    assert len(differing) == 4
    assert len(set(SPARK_BASE58_ALPHABET)) == 58


def test_bid_of_the_rfc8032_test_key_by_hand() -> None:
    assert SigningKey.from_seed(RFC8032_SEED).public_key == RFC8032_PUBLIC
    expected = reference_bid(RFC8032_PUBLIC)
    assert bid_from_public_key(RFC8032_PUBLIC) == expected
    # pinned, so that a change to both implementations at once is still noticed
    assert expected == "did:bid:ef2AQ9Fh19cEUSiQxNtupR6rMjmqCqkit"
    assert bid_from_public_key(RFC8032_PUBLIC, "abcd") == reference_bid(RFC8032_PUBLIC, "abcd")


def test_published_spark_bid_and_encoded_public_key() -> None:
    raw = parse_public_key_text(RFC008_PUBLIC_KEY_TEXT)
    assert raw == bytes.fromhex(RFC008_PUBLIC_KEY_TEXT)[3:]
    assert bid_from_public_key(raw) == RFC008_BID == reference_bid(raw)


def test_bitcoin_alphabet_would_give_a_different_bid() -> None:
    body = hashlib.sha256(bytes.fromhex(RFC008_PUBLIC_KEY_TEXT)[3:]).digest()[10:]
    assert "ef" + reference_base58(body, BITCOIN_BASE58_ALPHABET) != RFC008_BID[8:]


@DETERMINISTIC
@given(public_keys, acsns)
def test_bid_encode_decode_round_trips(public_key: bytes, acsn: str | None) -> None:
    text = bid_from_public_key(public_key, acsn)
    assert text == reference_bid(public_key, acsn)
    bid = parse_bid(text)
    assert bid.text == text
    assert bid.acsn == acsn
    assert bid.hash_bytes == hashlib.sha256(public_key).digest()[10:]


@DETERMINISTIC
@given(st.binary(max_size=40))
def test_base58_round_trips_and_matches_the_reference(data: bytes) -> None:
    encoded = base58_encode(data)
    assert encoded == reference_base58(data, SPARK_BASE58_ALPHABET)
    assert base58_decode(encoded) == data


def test_leading_zero_bytes_keep_their_place() -> None:
    body = b"\0\0" + bytes(range(1, 21))
    text = "did:bid:ef" + base58_encode(body)
    assert text.startswith("did:bid:ef11")
    assert parse_bid(text).hash_bytes == body


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bid:ef2AQ9Fh19cEUSiQxNtupR6rMjmqCqkit", "must start with 'did:bid:'"),
        ("did:bid:xf2AQ9Fh19cEUSiQxNtupR6rMjmqCqkit", "key type must be 'ef'"),
        ("did:bid:ABCD:ef2AQ9Fh19cEUSiQxNtupR6rMjmqCqkit", "'ABCD' must be 4 lowercase"),
        ("did:bid:abc:ef2AQ9Fh19cEUSiQxNtupR6rMjmqCqkit", "'abc' must be 4 lowercase"),
        ("did:bid:ef2AQ9Fh19cEUSiQxNtupR6rMjmqCqki0", "'0' at position 30 is not in the"),
        ("did:bid:ef2AQ9Fh19cEUSiQxNtupR6rMjmqCqk", "decodes to 21 bytes, expected 22"),
        ("did:bid:ef", "decodes to 0 bytes"),
        ("did:bid:ef" + "z" * 32, "32 characters, at most 31"),
        ("did:bid:ef" + "z" * 100_000, "100000 characters, at most 31"),
    ],
)
def test_invalid_bids_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_bid(text)
    assert caught.value.code is ErrorCode.INVALID_BID
    assert message in caught.value.message, caught.value.message


@DETERMINISTIC
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=SPARK_BASE58_ALPHABET + "0OIl:").map(lambda s: "did:bid:ef" + s),
        st.text(alphabet=SPARK_BASE58_ALPHABET + ":").map(lambda s: "did:bid:" + s),
        st.binary(),
        st.none(),
    )
)
def test_random_input_never_crashes_the_bid_parser(value: object) -> None:
    try:
        bid = parse_bid(value)  # type: ignore[arg-type]
    except SparkError as exc:
        assert exc.code is ErrorCode.INVALID_BID
    else:
        assert len(bid.hash_bytes) == 22


def test_public_key_text_forms() -> None:
    raw_hex = RFC8032_PUBLIC.hex()
    assert parse_public_key_text(raw_hex) == RFC8032_PUBLIC
    assert parse_public_key_text(raw_hex.upper()) == RFC8032_PUBLIC
    assert parse_public_key_text(f"  {raw_hex}\n") == RFC8032_PUBLIC
    assert parse_public_key_text("B06566" + raw_hex) == RFC8032_PUBLIC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("xyz", "not hex"),
        ("abcd", "got 4"),
        ("b06567" + "00" * 32, "70 starting with b06566, got 70"),
        ("00" * 33, "got 66"),
    ],
)
def test_bad_public_key_text_is_invalid_key(text: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_public_key_text(text)
    assert caught.value.code is ErrorCode.INVALID_KEY
    assert message in caught.value.message


def test_bid_needs_a_32_byte_key_and_a_valid_acsn() -> None:
    with pytest.raises(SparkError) as caught:
        bid_from_public_key(bytes(31))
    assert caught.value.code is ErrorCode.INVALID_KEY
    with pytest.raises(SparkError) as caught:
        bid_from_public_key(bytes(32), "ab-d")
    assert caught.value.code is ErrorCode.INVALID_BID
