"""The rules of DESIGN §4 at work, one behaviour per test (violations: test_rules_violations.py).

Names used: `root` is the genesis root authority, `acme` owns prefix `88` (genesis),
`reg` is made a registrar of `88` where a case needs one, `mallory` is a stranger.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    DEFAULT_VALUE_TTL_S,
    MAX_BATCH_ITEMS,
    MAX_META_JSON_DEPTH,
    MAX_TX_EXPIRY_AHEAD_MS,
    MAX_VALUE_DATA_BYTES,
    TEMPLATE_VALUE_INDEX,
)
from sparkchain.identifiers.tx import sign_body, sign_body_bytes, tx_id
from sparkchain.ledger.records import (
    META_VALUE_TYPE,
    _plainly_valid,
    check_value,
    check_values,
    filter_values,
    json_depth,
    plain_values,
)
from sparkchain.ledger.rules import check_envelope
from sparkchain.ledger.templates import (
    TEMPLATE_REF_VALUE_TYPE,
    TEMPLATE_VALUE_TYPE,
    check_template_values,
    template_reference,
)
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import (
    CHAIN_ID,
    URL_VALUE,
    RulesChain,
    bid_of,
    given_record,
    given_registrar,
    key,
    value,
)


@pytest.fixture
def chain() -> RulesChain:
    return RulesChain()


def test_root_authority_creates_top_level_prefix(chain: RulesChain) -> None:
    receipt = chain.apply(
        chain.signer("root").create_prefix("86", bid_of("bob"), now_ms=chain.now_ms)
    )
    created = chain.prefix("86")
    assert created is not None and created.owner == bid_of("bob")
    assert created.created_height == chain.height
    assert receipt.operation == "create_prefix" and receipt.prefixes == (created,)


def test_owner_of_nearest_existing_ancestor_creates_deep_prefix(chain: RulesChain) -> None:
    # 88.608 does not exist: the owner of 88 decides about 88.608.1
    chain.apply(chain.signer("acme").create_prefix("88.608.1", bid_of("bob"), now_ms=chain.now_ms))
    chain.apply(chain.signer("bob").create_prefix("88.608.1.7", bid_of("bob"), now_ms=chain.now_ms))
    assert chain.prefix("88.608.1.7") is not None
    assert chain.prefix("88.608") is None


def test_parent_owner_not_root_decides_sub_prefix(chain: RulesChain) -> None:
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("root").create_prefix("88.1", bid_of("root"), now_ms=chain.now_ms))
    assert caught.value.code == ErrorCode.UNAUTHORIZED


def test_register_stamps_block_time_heights_and_default_ttl(chain: RulesChain) -> None:
    values = [value(2, "EMAIL", "a@example.com", ttl=60), URL_VALUE]
    receipt = chain.apply(chain.signer("acme").register("88/Widget-1", values, now_ms=chain.now_ms))
    record = chain.record("88/WIDGET-1")
    assert record is not None
    assert record.identifier == "88/Widget-1" and record.owner == bid_of("acme")
    assert record.status == pb.ACTIVE
    assert (record.created_height, record.created_time_ms) == (chain.height, chain.time_ms)
    assert [v.index for v in record.values] == [1, 2]
    assert [v.ttl for v in record.values] == [DEFAULT_VALUE_TTL_S, 60]
    assert all(v.timestamp_ms == chain.time_ms for v in record.values)
    assert receipt.records == (record,) and receipt.signer == bid_of("acme")


def test_register_with_explicit_owner(chain: RulesChain) -> None:
    chain.apply(
        chain.signer("acme").register("88/x", [URL_VALUE], bid_of("bob"), now_ms=chain.now_ms)
    )
    record = chain.record("88/X")
    assert record is not None and record.owner == bid_of("bob")


def test_registrar_registers_under_prefix_and_owns_the_record(chain: RulesChain) -> None:
    given_registrar(chain)
    given_record(chain, "88/r-1", by="reg")
    record = chain.record("88/R-1")
    assert record is not None and record.owner == bid_of("reg")
    prefix = chain.prefix("88")
    assert prefix is not None and list(prefix.registrars) == [bid_of("reg")]


def test_removed_registrar_can_no_longer_register(chain: RulesChain) -> None:
    given_registrar(chain)
    chain.apply(
        chain.signer("acme").set_registrars("88", remove=[bid_of("reg")], now_ms=1 + chain.now_ms)
    )
    with pytest.raises(SparkError) as caught:
        given_record(chain, "88/r-2", by="reg")
    assert caught.value.code == ErrorCode.UNAUTHORIZED


def test_register_batch_writes_every_item_in_order(chain: RulesChain) -> None:
    items = [(f"item-{i}", [value(1, "URL", f"https://e.com/{i}")]) for i in range(5)]
    receipt = chain.apply(chain.signer("acme").register_batch("88", items, now_ms=chain.now_ms))
    assert [r.key for r in receipt.records] == [f"88/ITEM-{i}" for i in range(5)]
    assert all(chain.record(f"88/ITEM-{i}") is not None for i in range(5))


def test_register_batch_of_max_items_is_accepted(chain: RulesChain) -> None:
    items = [(f"n{i}", ()) for i in range(MAX_BATCH_ITEMS)]
    receipt = chain.apply(chain.signer("acme").register_batch("88", items, now_ms=chain.now_ms))
    assert len(receipt.records) == MAX_BATCH_ITEMS == len(chain.state.records)


def test_register_batch_with_one_bad_item_writes_nothing(chain: RulesChain) -> None:
    given_record(chain, "88/taken")
    before = copy.deepcopy(chain.state.records)
    items = [("fresh-1", ()), ("TAKEN", ()), ("fresh-2", ())]
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("acme").register_batch("88", items, now_ms=chain.now_ms))
    assert caught.value.code == ErrorCode.EXISTS
    assert chain.state.records == before


def test_update_upserts_and_removes_keeping_other_timestamps(chain: RulesChain) -> None:
    chain.apply(
        chain.signer("acme").register(
            "88/u",
            [URL_VALUE, value(2, "EMAIL", "a@e.com"), value(3, "X", "x")],
            now_ms=chain.now_ms,
        )
    )
    registered_at = chain.time_ms
    chain.next_block()
    chain.apply(
        chain.signer("acme").update(
            "88/u", [value(2, "EMAIL", "b@e.com"), value(7, "Y", "y")], [3], now_ms=chain.now_ms
        )
    )
    record = chain.record("88/U")
    assert record is not None
    assert [(v.index, v.data) for v in record.values] == [
        (1, URL_VALUE.data),
        (2, b"b@e.com"),
        (7, b"y"),
    ]
    assert [v.timestamp_ms for v in record.values] == [registered_at, chain.time_ms, chain.time_ms]
    assert record.created_height == chain.height - 1 and record.updated_height == chain.height


def test_transfer_hands_control_to_the_new_owner(chain: RulesChain) -> None:
    given_registrar(chain)
    given_record(chain, "88/t", by="reg")
    chain.apply(chain.signer("reg").transfer("88/t", bid_of("bob"), now_ms=chain.now_ms))
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("reg").update("88/t", [URL_VALUE], now_ms=chain.now_ms))
    assert caught.value.code == ErrorCode.UNAUTHORIZED
    chain.apply(chain.signer("bob").update("88/t", [value(5, "URL", "u")], now_ms=chain.now_ms))


def test_prefix_owner_revokes_a_record_owned_by_someone_else(chain: RulesChain) -> None:
    given_registrar(chain)
    given_record(chain, "88/r", by="reg")
    chain.apply(chain.signer("acme").revoke("88/r", "counterfeit", now_ms=chain.now_ms))
    record = chain.record("88/R")
    assert record is not None
    assert record.status == pb.REVOKED and record.revoke_reason == "counterfeit"
    assert [v.data for v in record.values] == [URL_VALUE.data]  # still resolvable as it was


def test_transfer_prefix_moves_every_right(chain: RulesChain) -> None:
    chain.apply(chain.signer("acme").transfer_prefix("88", bid_of("bob"), now_ms=chain.now_ms))
    chain.apply(chain.signer("bob").register("88/b", now_ms=chain.now_ms))
    with pytest.raises(SparkError) as caught:
        given_record(chain, "88/a")
    assert caught.value.code == ErrorCode.UNAUTHORIZED


def test_tx_valid_from_block_time_to_one_hour_ahead(chain: RulesChain) -> None:
    at_edge = chain.signer("acme").register("88/e1", now_ms=chain.now_ms, lifetime_ms=0)
    far_edge = chain.signer("acme").register(
        "88/e2", now_ms=chain.now_ms, lifetime_ms=MAX_TX_EXPIRY_AHEAD_MS
    )
    chain.apply(at_edge)
    chain.apply(far_edge)


def test_check_envelope_can_skip_signature_verification() -> None:
    signed = RulesChain().signer("acme").register("88/x", now_ms=1)
    signed.signature = bytes(64)
    assert check_envelope(signed, CHAIN_ID, verify_signature=False).register.identifier == "88/x"
    with pytest.raises(SparkError) as caught:
        check_envelope(signed, CHAIN_ID, verify_signature=True)
    assert caught.value.code == ErrorCode.BAD_SIGNATURE


def test_spark_meta_value_holding_a_json_object_is_accepted(chain: RulesChain) -> None:
    meta = value(2000, "spark.meta", '{"batch": "L-7", "origin": "Shenzhen"}')
    template = value(1001, "HS_TEMPLATE", "88.608/template-bearing")
    chain.apply(chain.signer("acme").register("88/m", [template, meta], now_ms=chain.now_ms))


def test_filter_values_keeps_requested_types_or_indexes(chain: RulesChain) -> None:
    chain.apply(
        chain.signer("acme").register(
            "88/f", [URL_VALUE, value(2, "EMAIL", "e"), value(3, "X", "x")], now_ms=chain.now_ms
        )
    )
    record = chain.record("88/F")
    assert record is not None
    assert [v.index for v in filter_values(record).values] == [1, 2, 3]
    assert [v.index for v in filter_values(record, types=["EMAIL"], indexes=[3]).values] == [2, 3]
    assert len(record.values) == 3  # the stored record is untouched


# The shortcut check_values takes for values that are plainly valid must never accept one
# that the rule-by-rule checks reject: types near every limit and character class.
_VALUE_TYPES = st.one_of(
    st.sampled_from(["URL", "EMAIL", "spark.meta", "a b", "a\tb", "a\x85b", "é", "", "x" * 64]),
    st.text(min_size=0, max_size=70),
)
_VALUES = st.builds(
    pb.Value,
    index=st.integers(0, 3),
    type=_VALUE_TYPES,
    data=st.one_of(
        st.binary(max_size=8), st.just(b"{}"), st.just(b"x" * (MAX_VALUE_DATA_BYTES + 1))
    ),
    timestamp_ms=st.sampled_from([0, 0, 1]),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_VALUES, max_size=4))
def test_plainly_valid_values_pass_every_rule(values: list[pb.Value]) -> None:
    if _plainly_valid(values):
        _check_each_rule(values)  # must not raise


_TEMPLATE_TYPES = frozenset({META_VALUE_TYPE, TEMPLATE_VALUE_TYPE, TEMPLATE_REF_VALUE_TYPE})


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            _VALUES,
            st.builds(
                pb.Value,
                index=st.sampled_from([1, TEMPLATE_VALUE_INDEX, 2000]),
                type=st.sampled_from([TEMPLATE_VALUE_TYPE, TEMPLATE_REF_VALUE_TYPE, "URL"]),
                data=st.sampled_from([b"88/T", b"{}", b"\xff"]),
            ),
        ),
        max_size=4,
    )
)
def test_plain_values_need_no_value_or_template_check(values: list[pb.Value]) -> None:
    """What register_batch skips for plain values: every check passes and no template
    applies (so no template is looked up)."""
    if plain_values(values, _TEMPLATE_TYPES):
        check_values(values, "w")
        check_template_values(values, "w")
        assert template_reference(values) is None
    if any(v.type in _TEMPLATE_TYPES for v in values):
        assert not plain_values(values, _TEMPLATE_TYPES)


def test_plain_values_must_exclude_meta_values() -> None:
    with pytest.raises(ValueError):
        plain_values([pb.Value(index=1, type="URL")], frozenset({TEMPLATE_VALUE_TYPE}))


def test_ordinary_values_take_the_shortcut_and_meta_values_do_not() -> None:
    assert _plainly_valid(
        [pb.Value(index=1, type="URL", data=b"https://x"), pb.Value(index=2, type="E")]
    )
    assert not _plainly_valid([pb.Value(index=1, type="spark.meta", data=b"{}")])
    assert not _plainly_valid([pb.Value(index=1, type="URL"), pb.Value(index=1, type="URL")])


def _check_each_rule(values: list[pb.Value]) -> None:
    seen: set[int] = set()
    for position, one in enumerate(values):
        check_value(one, f"value {position}")
        assert one.index not in seen
        seen.add(one.index)


@pytest.mark.parametrize(
    ("suffixes", "position", "code"),
    [
        (["a", "b\x07d", "c"], 1, ErrorCode.INVALID_IDENTIFIER),
        (["a", "b", "c", "B"], 3, ErrorCode.EXISTS),  # repeats item 1 (ASCII case-insensitive)
        (["Widget-0", "x"], 0, ErrorCode.EXISTS),  # registered before the batch
    ],
)
def test_a_refused_register_batch_names_the_failing_item_in_a_field(
    chain: RulesChain, suffixes: list[str], position: int, code: ErrorCode
) -> None:
    given_record(chain, "88/Widget-0")
    items = [(suffix, [URL_VALUE]) for suffix in suffixes]
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("acme").register_batch("88", items, now_ms=chain.now_ms))
    assert caught.value.code is code
    assert caught.value.item_index == position


def test_a_refusal_of_the_whole_batch_names_no_item(chain: RulesChain) -> None:
    items = [("a", [URL_VALUE])]
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("mallory").register_batch("88", items, now_ms=chain.now_ms))
    assert caught.value.code is ErrorCode.UNAUTHORIZED
    assert caught.value.item_index is None


def test_the_item_index_survives_pickling_across_processes() -> None:
    error = pickle.loads(pickle.dumps(SparkError(ErrorCode.EXISTS, "x", item_index=7)))
    assert (error.code, error.message, error.item_index) == (ErrorCode.EXISTS, "x", 7)


def test_a_pending_body_re_signed_by_another_key_cannot_take_the_real_txs_place(
    chain: RulesChain,
) -> None:
    # finding 11: a registrar who sees acme's pending Register re-signs the same body; before
    # the signer was part of the body, that copy ran first and acme's tx became DUPLICATE_TX
    given_registrar(chain)
    real = chain.signer("acme").register(
        "88/front", [URL_VALUE], bid_of("acme"), now_ms=chain.now_ms
    )
    with pytest.raises(SparkError) as caught:
        chain.apply(sign_body_bytes(real.body, key("reg")))
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    copy_body = pb.TxBody.FromString(real.body)
    copy_body.signer = key("reg").public_key
    assert tx_id(sign_body(copy_body, key("reg"))) != tx_id(real)
    receipt = chain.apply(real)
    assert receipt.tx_id == tx_id(real) and receipt.signer == bid_of("acme")


def test_meta_data_nested_deeper_than_the_limit_is_invalid_value_whatever_the_stack(
    chain: RulesChain,
) -> None:
    # 5,000 nested arrays used to escape the rules as RecursionError (INTERNAL at the API),
    # and whether the parser hit its limit depended on the stack the check ran on: a
    # validator could disagree with another about one block
    deep = b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    meta = value(2000, META_VALUE_TYPE, deep.decode())
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("acme").register("88/deep", [meta], now_ms=chain.now_ms))
    assert caught.value.code is ErrorCode.INVALID_VALUE
    assert f"at most {MAX_META_JSON_DEPTH} allowed" in caught.value.message
    limit = b'{"x":' + b"[" * (MAX_META_JSON_DEPTH - 1) + b"]" * (MAX_META_JSON_DEPTH - 1) + b"}"
    shallow = value(2000, META_VALUE_TYPE, limit.decode())
    chain.apply(chain.signer("acme").register("88/deep", [shallow], now_ms=chain.now_ms))
    assert chain.record("88/DEEP") is not None


@pytest.mark.parametrize(
    ("text", "depth"),
    [("{}", 1), ('{"a":[1,{"b":2}]}', 3), ('{"a":"[[[{{"}', 1), ('{"a":"\\"[["}', 1), ("1", 0)],
)
def test_json_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth
