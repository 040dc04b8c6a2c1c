"""One case per rule violation (DESIGN §3-§4): each builds its chain, returns the tx
under test and the code it must be rejected with; a rejected tx changes nothing.

A last test checks that every ErrorCode the rules can raise has a case here.
Names used: `root` is the genesis root authority, `acme` owns prefix `88` (genesis),
`reg` is made a registrar of `88` where a case needs one, `mallory` is a stranger.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    MAX_BATCH_ITEMS,
    MAX_REGISTRARS_PER_PREFIX,
    MAX_REVOKE_REASON_BYTES,
    MAX_TX_BYTES,
    MAX_TX_EXPIRY_AHEAD_MS,
    MAX_VALUE_DATA_BYTES,
    MAX_VALUES_PER_RECORD,
)
from sparkchain.identifiers.tx import sign_body, sign_body_bytes
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import (
    CHAIN_ID,
    URL_VALUE,
    RulesChain,
    bid_of,
    given_record,
    given_registrar,
    given_revoked,
    governance_tx,
    key,
    update,
    value,
)

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    name: str
    code: ErrorCode
    build: Callable[[RulesChain], pb.SignedTx]


CASES: list[Case] = []


def case(name: str, code: ErrorCode) -> Callable[[Callable[[RulesChain], pb.SignedTx]], None]:
    def register_case(build: Callable[[RulesChain], pb.SignedTx]) -> None:
        CASES.append(Case(name, code, build))

    return register_case


def _body(op: str, message: object, now_ms: int, chain_id: str = CHAIN_ID) -> pb.TxBody:
    body = pb.TxBody(
        chain_id=chain_id, signer=key("acme").public_key, nonce=7, expires_at_ms=now_ms + 60_000
    )
    getattr(body, op).CopyFrom(message)
    return body


# envelope
@case("signature_from_another_key_is_bad", ErrorCode.BAD_SIGNATURE)
def _(c: RulesChain) -> pb.SignedTx:
    return sign_body_bytes(c.signer("acme").register("88/x", now_ms=c.now_ms).body, key("mallory"))


@case("signature_of_wrong_length_is_bad", ErrorCode.BAD_SIGNATURE)
def _(c: RulesChain) -> pb.SignedTx:
    signed = c.signer("acme").register("88/x", now_ms=c.now_ms)
    signed.signature = signed.signature[:10]
    return signed


@case("tx_for_another_chain_is_wrong_chain", ErrorCode.WRONG_CHAIN)
def _(c: RulesChain) -> pb.SignedTx:
    return sign_body(
        _body("register", pb.Register(identifier="88/x"), c.now_ms, "other"), key("acme")
    )


@case("body_without_operation_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    return sign_body(pb.TxBody(chain_id=CHAIN_ID, expires_at_ms=c.now_ms), key("acme"))


@case("body_that_does_not_decode_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    return sign_body_bytes(b"\xff\xff\xff", key("acme"))


@case("register_bytes_followed_by_revoke_bytes_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    # one signature over two operations: protobuf would keep the Revoke (finding 10)
    given_record(c)
    register = _body("register", pb.Register(identifier="88/new"), c.now_ms)
    revoke = _body("revoke", pb.Revoke(identifier="88/p-1"), c.now_ms)
    return sign_body_bytes(register.SerializeToString() + revoke.SerializeToString(), key("acme"))


@case("body_with_unknown_fields_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    body = _body("register", pb.Register(identifier="88/x"), c.now_ms)
    return sign_body_bytes(body.SerializeToString() + b"\xa0\x06\x01", key("acme"))


@case("signer_of_wrong_length_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    body = _body("register", pb.Register(identifier="88/x"), c.now_ms)
    body.signer = b"short"
    return sign_body(body, key("acme"))


@case("body_over_max_tx_bytes_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    return pb.SignedTx(body=bytes(MAX_TX_BYTES + 1), signature=bytes(64))


# replay and expiry
@case("tx_already_in_an_earlier_block_is_duplicate", ErrorCode.DUPLICATE_TX)
def _(c: RulesChain) -> pb.SignedTx:
    signed = c.signer("acme").register("88/x", now_ms=c.now_ms)
    c.apply(signed)
    c.next_block()
    return signed


@case("same_tx_twice_in_one_block_is_duplicate", ErrorCode.DUPLICATE_TX)
def _(c: RulesChain) -> pb.SignedTx:
    signed = c.signer("acme").set_registrars("88", add=[bid_of("reg")], now_ms=c.now_ms)
    c.apply(signed)
    return signed


@case("tx_expired_before_block_time", ErrorCode.EXPIRED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", now_ms=c.now_ms - 10, lifetime_ms=9)


@case("tx_expiring_over_an_hour_after_block_time", ErrorCode.EXPIRED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register(
        "88/x", now_ms=c.now_ms, lifetime_ms=MAX_TX_EXPIRY_AHEAD_MS + 1
    )


# create_prefix
@case("top_level_prefix_by_non_root_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").create_prefix("99", bid_of("acme"), now_ms=c.now_ms)


@case("sub_prefix_under_foreign_prefix_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("mallory").create_prefix("88.666", bid_of("mallory"), now_ms=c.now_ms)


@case("existing_prefix_in_other_case_exists", ErrorCode.EXISTS)
def _(c: RulesChain) -> pb.SignedTx:
    c.apply(c.signer("acme").create_prefix("88.ab", bid_of("acme"), now_ms=c.now_ms))
    return c.signer("acme").create_prefix("88.AB", bid_of("acme"), now_ms=c.now_ms)


@case("existing_top_level_prefix_exists", ErrorCode.EXISTS)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("root").create_prefix("88", bid_of("root"), now_ms=c.now_ms)


@case("create_prefix_with_bad_syntax_is_invalid_prefix", ErrorCode.INVALID_PREFIX)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").create_prefix("88..1", bid_of("acme"), now_ms=c.now_ms)


@case("create_prefix_owner_not_a_bid", ErrorCode.INVALID_BID)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").create_prefix("88.1", "did:bid:xx123", now_ms=c.now_ms)


@case("create_prefix_without_owner_is_invalid_bid", ErrorCode.INVALID_BID)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").create_prefix("88.1", "", now_ms=c.now_ms)


# set_registrars
@case("set_registrars_by_non_owner_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("mallory").set_registrars("88", add=[bid_of("mallory")], now_ms=c.now_ms)


@case("registrar_cannot_add_registrars", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    given_registrar(c)
    return c.signer("reg").set_registrars("88", add=[bid_of("mallory")], now_ms=c.now_ms)


@case("set_registrars_of_missing_prefix_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").set_registrars("77", add=[bid_of("reg")], now_ms=c.now_ms)


@case("set_registrars_with_bad_bid", ErrorCode.INVALID_BID)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").set_registrars("88", add=["alice"], now_ms=c.now_ms)


@case("set_registrars_changing_nothing_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").set_registrars("88", now_ms=c.now_ms)


@case("set_registrars_adding_and_removing_one_bid_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").set_registrars("88", [bid_of("reg")], [bid_of("reg")], now_ms=c.now_ms)


@case("too_many_registrars_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    many = [
        bid_from_public_key(i.to_bytes(32, "big")) for i in range(MAX_REGISTRARS_PER_PREFIX + 1)
    ]
    return c.signer("acme").set_registrars("88", add=many, now_ms=c.now_ms)


# transfer_prefix
@case("transfer_prefix_by_non_owner_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("mallory").transfer_prefix("88", bid_of("mallory"), now_ms=c.now_ms)


@case("transfer_of_missing_prefix_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").transfer_prefix("88.5", bid_of("bob"), now_ms=c.now_ms)


@case("transfer_prefix_to_non_bid", ErrorCode.INVALID_BID)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").transfer_prefix("88", "did:bid:ef0OIl", now_ms=c.now_ms)


# register
@case("register_under_foreign_prefix_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("mallory").register("88/mine", [URL_VALUE], now_ms=c.now_ms)


@case("register_under_missing_prefix_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88.404/x", [URL_VALUE], now_ms=c.now_ms)


@case("register_of_existing_identifier_in_other_case_exists", ErrorCode.EXISTS)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c, "88/AbC")
    return c.signer("acme").register("88/aBc", [URL_VALUE], now_ms=c.now_ms)


@case("register_of_revoked_identifier_exists", ErrorCode.EXISTS)
def _(c: RulesChain) -> pb.SignedTx:
    given_revoked(c, "88/gone")
    return c.signer("acme").register("88/gone", [URL_VALUE], now_ms=c.now_ms)


@case("register_with_bidi_override_is_invalid_identifier", ErrorCode.INVALID_IDENTIFIER)
def _(c: RulesChain) -> pb.SignedTx:
    # finding 12: shows as 88/A0exe.jpg
    return c.signer("acme").register("88/A0\u202egpj.exe", [URL_VALUE], now_ms=c.now_ms)


@case("register_of_nfd_twin_of_a_record_is_invalid_identifier", ErrorCode.INVALID_IDENTIFIER)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c, "88/Caf\u00e9")
    return c.signer("acme").register("88/Cafe\u0301", [URL_VALUE], now_ms=c.now_ms)


@case("register_without_slash_is_invalid_identifier", ErrorCode.INVALID_IDENTIFIER)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88-no-suffix", [URL_VALUE], now_ms=c.now_ms)


@case("register_with_bad_owner_is_invalid_bid", ErrorCode.INVALID_BID)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", [URL_VALUE], "bob", now_ms=c.now_ms)


@case("value_index_zero_is_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", [value(0, "URL", "u")], now_ms=c.now_ms)


@case("value_without_type_is_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", [value(1, "", "u")], now_ms=c.now_ms)


@case("value_type_with_whitespace_is_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", [value(1, "U RL", "u")], now_ms=c.now_ms)


@case("value_with_timestamp_is_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    stamped = value(1, "URL", "u")
    stamped.timestamp_ms = 5
    return c.signer("acme").register("88/x", [stamped], now_ms=c.now_ms)


@case("two_values_with_one_index_are_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", [URL_VALUE, value(1, "EMAIL", "e")], now_ms=c.now_ms)


@case("spark_meta_that_is_not_json_is_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", [value(2000, "spark.meta", "{oops")], now_ms=c.now_ms)


@case("spark_meta_that_is_a_json_list_is_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register("88/x", [value(2000, "spark.meta", "[1, 2]")], now_ms=c.now_ms)


@case("value_data_over_16_kib_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    big = value(1, "DATA", bytes(MAX_VALUE_DATA_BYTES + 1))
    return c.signer("acme").register("88/x", [big], now_ms=c.now_ms)


@case("more_than_64_values_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    values = [value(i, "T", "v") for i in range(1, MAX_VALUES_PER_RECORD + 2)]
    return c.signer("acme").register("88/x", values, now_ms=c.now_ms)


@case("record_over_64_kib_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    values = [value(i, "DATA", bytes(MAX_VALUE_DATA_BYTES)) for i in range(1, 5)]
    return c.signer("acme").register("88/x", values, now_ms=c.now_ms)


# register_batch
@case("batch_under_foreign_prefix_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("mallory").register_batch("88", [("a", [URL_VALUE])], now_ms=c.now_ms)


@case("batch_under_missing_prefix_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register_batch("88.9", [("a", [URL_VALUE])], now_ms=c.now_ms)


@case("batch_repeating_a_suffix_exists", ErrorCode.EXISTS)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register_batch("88", [("a", ()), ("b", ()), ("A", ())], now_ms=c.now_ms)


@case("batch_without_items_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register_batch("88", [], now_ms=c.now_ms)


@case("batch_over_max_items_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    items = [(f"n{i}", ()) for i in range(MAX_BATCH_ITEMS + 1)]
    return c.signer("acme").register_batch("88", items, now_ms=c.now_ms)


@case("batch_item_with_control_character_is_invalid_identifier", ErrorCode.INVALID_IDENTIFIER)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register_batch("88", [("ok", ()), ("b\x07d", ())], now_ms=c.now_ms)


@case("batch_item_with_zero_width_space_is_invalid_identifier", ErrorCode.INVALID_IDENTIFIER)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register_batch("88", [("SN\u200b1", ())], now_ms=c.now_ms)


@case("batch_with_bad_prefix_is_invalid_prefix", ErrorCode.INVALID_PREFIX)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register_batch("88/x", [("a", ())], now_ms=c.now_ms)


@case("batch_item_with_bad_value_is_invalid", ErrorCode.INVALID_VALUE)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").register_batch("88", [("a", [value(0, "URL", "u")])], now_ms=c.now_ms)


# update, transfer, revoke
@case("update_by_stranger_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("mallory").update("88/p-1", [URL_VALUE], now_ms=c.now_ms)


@case("registrar_cannot_update_a_record_it_does_not_own", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    given_registrar(c)
    given_record(c)
    return c.signer("reg").update("88/p-1", [URL_VALUE], now_ms=c.now_ms)


@case("update_of_missing_identifier_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").update("88/none", [URL_VALUE], now_ms=c.now_ms)


@case("update_removing_absent_index_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("acme").update("88/p-1", remove_indexes=[9], now_ms=c.now_ms)


@case("update_of_revoked_record_is_revoked", ErrorCode.REVOKED)
def _(c: RulesChain) -> pb.SignedTx:
    given_revoked(c)
    return c.signer("acme").update("88/p-1", [URL_VALUE], now_ms=c.now_ms)


@case("update_changing_nothing_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("acme").update("88/p-1", now_ms=c.now_ms)


@case("update_upserting_and_removing_one_index_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("acme").update("88/p-1", [URL_VALUE], [1], now_ms=c.now_ms)


@case("update_removing_an_index_twice_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("acme").update("88/p-1", remove_indexes=[1, 1], now_ms=c.now_ms)


@case("update_growing_past_64_values_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)  # holds index 1
    values = [value(i, "T", "v") for i in range(2, MAX_VALUES_PER_RECORD + 2)]
    return c.signer("acme").update("88/p-1", values, now_ms=c.now_ms)


@case("update_growing_past_64_kib_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    values = [value(i, "DATA", bytes(MAX_VALUE_DATA_BYTES)) for i in range(2, 6)]
    return c.signer("acme").update("88/p-1", values, now_ms=c.now_ms)


@case("transfer_by_stranger_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("mallory").transfer("88/p-1", bid_of("mallory"), now_ms=c.now_ms)


@case("transfer_of_missing_identifier_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").transfer("88/none", bid_of("bob"), now_ms=c.now_ms)


@case("transfer_of_revoked_record_is_revoked", ErrorCode.REVOKED)
def _(c: RulesChain) -> pb.SignedTx:
    given_revoked(c)
    return c.signer("acme").transfer("88/p-1", bid_of("bob"), now_ms=c.now_ms)


@case("transfer_to_non_bid", ErrorCode.INVALID_BID)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("acme").transfer("88/p-1", "", now_ms=c.now_ms)


@case("revoke_by_stranger_is_unauthorized", ErrorCode.UNAUTHORIZED)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("mallory").revoke("88/p-1", now_ms=c.now_ms)


@case("revoke_of_missing_identifier_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").revoke("88/none", now_ms=c.now_ms)


@case("revoke_of_revoked_record_is_revoked", ErrorCode.REVOKED)
def _(c: RulesChain) -> pb.SignedTx:
    given_revoked(c)
    return c.signer("acme").revoke("88/p-1", now_ms=c.now_ms)


@case("revoke_reason_over_limit_is_too_large", ErrorCode.TOO_LARGE)
def _(c: RulesChain) -> pb.SignedTx:
    given_record(c)
    return c.signer("acme").revoke("88/p-1", "r" * (MAX_REVOKE_REASON_BYTES + 1), now_ms=c.now_ms)


@case("revoke_with_bad_identifier_is_invalid_identifier", ErrorCode.INVALID_IDENTIFIER)
def _(c: RulesChain) -> pb.SignedTx:
    return c.signer("acme").revoke("88/ trailing-space ", now_ms=c.now_ms)


# membership (DESIGN §12): the test genesis has validators node1..node4 (keys validator1..4)
@case("update_approved_by_two_of_four_has_no_quorum", ErrorCode.NO_QUORUM)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(add=[("node5", "validator5")]), ["validator1", "validator2"])


@case("update_approved_by_outsiders_has_no_quorum", ErrorCode.NO_QUORUM)
def _(c: RulesChain) -> pb.SignedTx:
    outsiders = ["validator1", "validator2", "mallory", "validator5"]
    return governance_tx(c, update(add=[("node5", "validator5")]), outsiders)


@case("update_without_approvals_has_no_quorum", ErrorCode.NO_QUORUM)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(remove=["node4"]), [])


@case("update_removing_two_of_four_removes_too_many", ErrorCode.TOO_MANY_REMOVED)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(remove=["node3", "node4"]))


@case("update_adding_a_validators_key_again_is_duplicate", ErrorCode.DUPLICATE_VALIDATOR)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(add=[("node5", "validator2")]))


@case("update_adding_an_existing_name_is_duplicate", ErrorCode.DUPLICATE_VALIDATOR)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(add=[("node2", "validator5")]))


@case("update_adding_one_name_twice_is_duplicate", ErrorCode.DUPLICATE_VALIDATOR)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(add=[("node5", "validator5"), ("node5", "validator6")]))


@case("update_rotating_to_another_validators_key_is_duplicate", ErrorCode.DUPLICATE_VALIDATOR)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(rotate=[("node1", "validator2")]))


@case("update_removing_an_unknown_name_is_not_found", ErrorCode.NOT_FOUND)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(remove=["node9"]))


@case("update_changing_nothing_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update())


@case("update_with_a_short_key_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    op = update()
    op.add.add(name="node5", public_key=b"\x01" * 31)
    return governance_tx(c, op)


@case("update_with_an_address_that_is_not_host_port_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    op = update()
    op.add.add(name="node5", public_key=key("validator5").public_key, address="no-port")
    return governance_tx(c, op)


@case("update_with_an_approval_of_another_body_is_bad", ErrorCode.BAD_SIGNATURE)
def _(c: RulesChain) -> pb.SignedTx:
    signed = governance_tx(c, update(remove=["node4"]))
    other = governance_tx(c, update(remove=["node3"]))
    signed.approvals[2].CopyFrom(other.approvals[2])
    return signed


@case("update_approved_twice_by_one_key_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(remove=["node4"]), ["validator1", "validator1", "validator2"])


@case("update_with_a_signer_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    body = pb.TxBody(chain_id=CHAIN_ID, signer=key("validator1").public_key, nonce=1)
    body.expires_at_ms = c.now_ms + 60_000
    body.update_validators.CopyFrom(update(remove=["node4"]))
    return sign_body(body, key("validator1"))


@case("register_with_approvals_is_invalid", ErrorCode.INVALID_TX)
def _(c: RulesChain) -> pb.SignedTx:
    signed = c.signer("acme").register("88/x", now_ms=c.now_ms)
    signed.approvals.add(validator=key("validator1").public_key, signature=b"\x00" * 64)
    return signed


@case("update_for_another_chain_is_wrong_chain", ErrorCode.WRONG_CHAIN)
def _(c: RulesChain) -> pb.SignedTx:
    return governance_tx(c, update(remove=["node4"]), chain_id="other-chain")


@pytest.mark.parametrize("violation", CASES, ids=[c.name for c in CASES])
def test_violation_is_rejected_with_its_code_and_changes_nothing(violation: Case) -> None:
    chain = RulesChain()
    signed = violation.build(chain)
    records, prefixes = copy.deepcopy(chain.state.records), copy.deepcopy(chain.state.prefixes)
    tx_ids = set(chain.state.tx_ids)
    with pytest.raises(SparkError) as caught:
        chain.apply(signed)
    assert caught.value.code == violation.code, caught.value.message
    assert caught.value.message
    assert chain.state.records == records
    assert chain.state.prefixes == prefixes
    assert chain.state.tx_ids == tx_ids


# modules whose raises make up the rules: the envelope, identifier grammar, values, ops
RULE_SOURCES = (
    "identifiers/tx.py",
    "identifiers/handle.py",
    "ledger/records.py",
    "ledger/rules.py",
    "ledger/rules_ops.py",
    "ledger/rules_prefixes.py",
    "ledger/rules_records.py",
    "ledger/validators.py",
)


def _codes_raised_in(path: Path) -> set[ErrorCode]:
    codes = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ErrorCode"
        ):
            codes.add(ErrorCode(node.attr))
    return codes


def test_every_error_code_the_rules_raise_is_reached_by_a_case() -> None:
    raisable = set().union(*(_codes_raised_in(REPO / source) for source in RULE_SOURCES))
    reached = {violation.code for violation in CASES}
    assert raisable - reached == set()
    assert len(raisable) >= 14  # the scan itself works
