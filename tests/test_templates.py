"""Metadata templates (ledger/templates.py, docs/templates.md): the schema subset, every way
a document is refused, and the rule on Register, RegisterBatch and Update.

Names used: `acme` owns prefix `88` (genesis) and writes both templates and records.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    MAX_TEMPLATE_DEPTH,
    MAX_TEMPLATE_ENUM_MEMBERS,
    MAX_TEMPLATE_PROPERTIES,
)
from sparkchain.ledger.templates import (
    TEMPLATE_REF_VALUE_TYPE,
    TEMPLATE_VALUE_TYPE,
    bound_view,
    document_problem,
    parse_template,
)
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import URL_VALUE, RulesChain, value

PRODUCT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "product",
    "type": "object",
    "required": ["lot", "made"],
    "additionalProperties": False,
    "properties": {
        "lot": {"type": "string", "pattern": r"^L\d{4}$"},
        "made": {"type": "string", "format": "date"},
        "weight": {"type": "number", "minimum": 0, "maximum": 1000},
        "count": {"type": "integer", "minimum": 1},
        "grade": {"enum": ["A", "B", 3]},
        "fragile": {"type": "boolean"},
        "name": {"type": "string", "minLength": 2, "maxLength": 8},
        "maker": {
            "type": "object",
            "required": ["gln"],
            "properties": {"gln": {"type": "string", "pattern": r"^\d{13}$"}},
        },
    },
}
GOOD = {"lot": "L2025", "made": "2024-02-29", "weight": 2.5, "maker": {"gln": "0" * 13}}


def schema_bytes(schema: dict[str, Any]) -> bytes:
    return json.dumps(schema).encode()


def meta(document: dict[str, Any], index: int = 2000) -> pb.Value:
    return value(index, "spark.meta", json.dumps(document))


def ref(template: str = "88/T-product") -> pb.Value:
    return value(1001, TEMPLATE_REF_VALUE_TYPE, template)


@pytest.fixture
def chain() -> RulesChain:
    built = RulesChain()
    built.apply(
        built.signer("acme").register(
            "88/T-product",
            [value(1, TEMPLATE_VALUE_TYPE, schema_bytes(PRODUCT))],
            now_ms=built.now_ms,
        )
    )
    return built


def register(chain: RulesChain, identifier: str, *values: pb.Value) -> None:
    chain.apply(chain.signer("acme").register(identifier, values, now_ms=chain.now_ms))


def refused(chain: RulesChain, identifier: str, *values: pb.Value) -> SparkError:
    with pytest.raises(SparkError) as caught:
        register(chain, identifier, *values)
    assert chain.record(identifier.upper()) is None
    return caught.value


# ---------------------------------------------------------------------------- documents


@pytest.mark.parametrize(
    ("change", "path", "says"),
    [
        ({"lot": None}, "lot", "is required and missing"),
        ({"lot": "X2025"}, "lot", r'"X2025" does not match ^L\d{4}$'),
        ({"lot": 2025}, "lot", "is an integer, expected string"),
        ({"made": "2023-02-29"}, "made", "is not a date"),
        ({"made": "2024-13-01"}, "made", "is not a date"),
        ({"weight": -1}, "weight", "below the minimum 0"),
        ({"weight": 1000.5}, "weight", "above the maximum 1000"),
        ({"weight": "2"}, "weight", "is a string, expected number"),
        ({"count": 1.5}, "count", "is a number, expected integer"),
        ({"count": True}, "count", "is a boolean, expected integer"),
        ({"count": 0}, "count", "below the minimum 1"),
        ({"grade": "C"}, "grade", "is not one of the enum"),
        ({"grade": True}, "grade", "is not one of the enum"),
        ({"fragile": 1}, "fragile", "is an integer, expected boolean"),
        ({"name": "x"}, "name", "is 1 characters, at least 2"),
        ({"name": "x" * 9}, "name", "is 9 characters, at most 8"),
        ({"colour": "red"}, "colour", "is not a property of the template"),
        ({"maker": {}}, "maker.gln", "is required and missing"),
        ({"maker": {"gln": "12"}}, "maker.gln", "does not match"),
        ({"maker": "acme"}, "maker", "is a string, expected object"),
    ],
)
def test_every_rejection_names_the_property_path(
    change: dict[str, Any], path: str, says: str
) -> None:
    document = {**GOOD, **change}
    document = {k: v for k, v in document.items() if v is not None}
    problem = document_problem(parse_template(schema_bytes(PRODUCT)), document)
    assert problem is not None
    assert problem[0] == path
    assert says in problem[1]


def test_a_document_that_follows_the_template_passes() -> None:
    rule = parse_template(schema_bytes(PRODUCT))
    assert document_problem(rule, GOOD) is None
    assert document_problem(rule, {**GOOD, "grade": 3.0, "count": 2.0, "fragile": False}) is None


# ---------------------------------------------------------------------------- the subset


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = _object(inner=schema)
    return schema


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "string"}, 'with "type": "object"'),
        (_object(a={"type": "array"}), "type 'array' is not one of"),
        (_object(a={"type": ["string", "null"]}), "is not one of"),
        (_object(a={}), 'needs a "type" or an "enum"'),
        (_object(a={"type": "number", "pattern": "x"}), "'pattern' is not in the supported"),
        (_object(a={"type": "string", "oneOf": []}), "'oneOf' is not in the supported"),
        (_object(a={"type": "string", "format": "email"}), "only 'date'"),
        (_object(a={"type": "string", "pattern": "(a|b)"}), "groups and alternation"),
        (_object(a={"type": "string", "minLength": -1}), "whole number >= 0"),
        (_object(a={"type": "number", "minimum": "0"}), "finite number"),
        (_object(a={"enum": []}), "non-empty list"),
        (_object(a={"enum": [{"x": 1}]}), "strings, numbers, booleans or null"),
        (_object(a={"enum": list(range(MAX_TEMPLATE_ENUM_MEMBERS + 1))}), "members, at most"),
        (_object(a={"type": "string", "enum": [1]}), "is not of type string"),
        ({"type": "object", "required": ["a"]}, "'a' is not in properties"),
        ({"type": "object", "additionalProperties": {}}, "must be true or false"),
        (_nested(MAX_TEMPLATE_DEPTH + 2), f"nest deeper than {MAX_TEMPLATE_DEPTH}"),
        (
            _object(**{f"p{i}": {"type": "string"} for i in range(MAX_TEMPLATE_PROPERTIES + 1)}),
            f"more than {MAX_TEMPLATE_PROPERTIES} properties",
        ),
    ],
)
def test_a_template_outside_the_subset_is_refused_naming_the_keyword(
    schema: dict[str, Any], says: str
) -> None:
    with pytest.raises(SparkError) as caught:
        parse_template(schema_bytes(schema))
    assert caught.value.code is ErrorCode.INVALID_VALUE
    assert says in caught.value.message


def test_template_data_that_is_not_json_is_refused() -> None:
    for data in (b"\xff", b"{", b'{"type": "object", "x": NaN}', b"[" * 40 + b"]" * 40):
        with pytest.raises(SparkError) as caught:
            parse_template(data)
        assert caught.value.code is ErrorCode.INVALID_VALUE


# documents drawn at random are judged as a full JSON Schema validator judges them
_SCHEMAS = st.sampled_from(
    [
        PRODUCT,
        {"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}},
        {"type": "object", "required": ["e"], "properties": {"e": {"enum": [1, "1", None]}}},
        {"type": "object", "properties": {"s": {"type": "string", "pattern": "^[a-c]+1?$"}}},
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-10, 2000)
    | st.floats(-10, 2000, allow_nan=False)
    | st.sampled_from(["L2025", "2024-02-29", "2023-02-29", "1", "A", "B", "ab", "abc1", "x"])
    | st.text(max_size=10)
)
_DOCUMENTS = st.dictionaries(
    st.sampled_from(["lot", "made", "weight", "count", "grade", "fragile", "name", "n", "e", "s"]),
    _SCALARS | st.fixed_dictionaries({}, optional={"gln": st.sampled_from(["0" * 13, "1"])}),
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SCHEMAS, _DOCUMENTS)
def test_random_documents_are_judged_as_jsonschema_judges_them(
    schema: dict[str, Any], document: dict[str, Any]
) -> None:
    oracle = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    ours = document_problem(parse_template(schema_bytes(schema)), document)
    assert (ours is None) is oracle.is_valid(document), (schema, document, ours)


# ---------------------------------------------------------------------------- the ledger rule


def test_register_with_metadata_that_follows_the_template(chain: RulesChain) -> None:
    register(chain, "88/P-1", URL_VALUE, ref(), meta(GOOD))
    record = chain.record("88/P-1")
    assert record is not None
    assert [v.index for v in record.values] == [1, 1001, 2000]


def test_one_property_per_value_is_read_as_the_template_types_it(chain: RulesChain) -> None:
    register(
        chain,
        "88/P-2",
        ref(),
        value(2000, "lot", "L0001"),
        value(2001, "made", "2025-01-31"),
        value(2002, "weight", "12.5"),
        value(2003, "fragile", "true"),
    )
    record = chain.record("88/P-2")
    assert record is not None
    view = bound_view(record.values, parse_template(schema_bytes(PRODUCT)))
    assert view["weight"] == {"index": 2002, "value": 12.5}
    assert view["fragile"] == {"index": 2003, "value": True}
    assert view["lot"] == {"index": 2000, "value": "L0001"}


def test_register_with_a_bad_document_is_template_mismatch_naming_the_path(
    chain: RulesChain,
) -> None:
    error = refused(chain, "88/P-3", ref(), meta({**GOOD, "lot": "bad"}))
    assert error.code is ErrorCode.TEMPLATE_MISMATCH
    assert "template 88/T-product: property lot (index 2000)" in error.message


def test_a_property_given_twice_is_template_mismatch(chain: RulesChain) -> None:
    error = refused(chain, "88/P-4", ref(), meta(GOOD), value(2001, "lot", "L0002"))
    assert error.code is ErrorCode.TEMPLATE_MISMATCH
    assert "property lot is given twice (index 2000 and index 2001)" in error.message


def test_a_per_property_value_that_is_not_its_type_is_template_mismatch(
    chain: RulesChain,
) -> None:
    error = refused(
        chain,
        "88/P-5",
        ref(),
        meta({"lot": "L0001", "made": "2025-01-01"}),
        value(2001, "weight", "heavy"),
    )
    assert error.code is ErrorCode.TEMPLATE_MISMATCH
    assert "property weight (index 2001)" in error.message


def test_naming_a_template_that_does_not_exist_is_not_found(chain: RulesChain) -> None:
    assert refused(chain, "88/P-6", ref("88/T-none"), meta(GOOD)).code is ErrorCode.NOT_FOUND


def test_naming_a_record_that_is_no_template_is_invalid_value(chain: RulesChain) -> None:
    register(chain, "88/plain", URL_VALUE)
    error = refused(chain, "88/P-7", ref("88/plain"), meta(GOOD))
    assert error.code is ErrorCode.INVALID_VALUE
    assert "is not a template" in error.message


def test_a_revoked_template_cannot_be_used(chain: RulesChain) -> None:
    chain.apply(chain.signer("acme").revoke("88/T-product", "old", now_ms=chain.now_ms))
    assert refused(chain, "88/P-8", ref(), meta(GOOD)).code is ErrorCode.REVOKED


def test_a_template_reference_elsewhere_than_index_1001_is_invalid(chain: RulesChain) -> None:
    error = refused(chain, "88/P-9", value(7, TEMPLATE_REF_VALUE_TYPE, "88/T-product"))
    assert error.code is ErrorCode.INVALID_VALUE
    assert "belongs at index 1001" in error.message
    error = refused(chain, "88/P-9", value(1001, TEMPLATE_REF_VALUE_TYPE, "no prefix"))
    assert error.code is ErrorCode.INVALID_VALUE


def test_a_template_outside_the_subset_cannot_be_registered(chain: RulesChain) -> None:
    bad = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(x)"}}}
    error = refused(chain, "88/T-bad", value(1, TEMPLATE_VALUE_TYPE, schema_bytes(bad)))
    assert error.code is ErrorCode.INVALID_VALUE
    assert "register: index 1: spark.template a: pattern '(x)'" in error.message


def test_batch_items_are_each_checked_and_the_failing_one_is_named(chain: RulesChain) -> None:
    items = [
        ("B-1", [ref(), meta(GOOD)]),
        ("B-2", [ref(), meta({**GOOD, "weight": 5000})]),
    ]
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("acme").register_batch("88", items, now_ms=chain.now_ms))
    assert caught.value.code is ErrorCode.TEMPLATE_MISMATCH
    assert caught.value.item_index == 1
    assert "items[1]" in caught.value.message and "property weight" in caught.value.message
    assert chain.record("88/B-1") is None  # all or nothing


def test_a_batch_may_create_a_template_and_use_it(chain: RulesChain) -> None:
    schema = {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}
    items = [
        ("T-new", [value(1, TEMPLATE_VALUE_TYPE, schema_bytes(schema))]),
        ("U-1", [ref("88/T-new"), value(2000, "x", "7")]),
    ]
    chain.apply(chain.signer("acme").register_batch("88", items, now_ms=chain.now_ms))
    assert chain.record("88/U-1") is not None


def test_update_of_metadata_is_checked_against_the_template(chain: RulesChain) -> None:
    register(chain, "88/P-10", URL_VALUE, ref(), meta(GOOD))
    with pytest.raises(SparkError) as caught:
        chain.apply(
            chain.signer("acme").update(
                "88/P-10", [meta({**GOOD, "made": "yesterday"})], now_ms=chain.now_ms
            )
        )
    assert caught.value.code is ErrorCode.TEMPLATE_MISMATCH
    assert "property made" in caught.value.message
    with pytest.raises(SparkError) as caught:  # removing the metadata drops required ones
        chain.apply(chain.signer("acme").update("88/P-10", [], [2000], now_ms=chain.now_ms))
    assert caught.value.code is ErrorCode.TEMPLATE_MISMATCH


def test_update_that_adds_a_template_reference_checks_the_metadata(chain: RulesChain) -> None:
    register(chain, "88/P-11", URL_VALUE, meta({"lot": "nope"}))
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("acme").update("88/P-11", [ref()], now_ms=chain.now_ms))
    assert caught.value.code is ErrorCode.TEMPLATE_MISMATCH


def test_a_template_change_does_not_judge_records_written_before(chain: RulesChain) -> None:
    register(chain, "88/P-12", URL_VALUE, ref(), meta(GOOD))
    stricter = {**PRODUCT, "required": ["lot", "made", "count"]}
    chain.next_block()
    chain.apply(
        chain.signer("acme").update(
            "88/T-product",
            [value(1, TEMPLATE_VALUE_TYPE, schema_bytes(stricter))],
            now_ms=chain.now_ms,
        )
    )
    record = chain.record("88/P-12")
    assert record is not None and record.values[-1].data == meta(GOOD).data  # kept as written
    # a change that leaves its metadata alone is not judged again
    chain.apply(
        chain.signer("acme").update(
            "88/P-12", [value(1, "URL", "https://example.com/new")], now_ms=chain.now_ms
        )
    )
    # its metadata, once written again, follows the template as it is now
    with pytest.raises(SparkError) as caught:
        chain.apply(chain.signer("acme").update("88/P-12", [meta(GOOD)], now_ms=chain.now_ms))
    assert caught.value.code is ErrorCode.TEMPLATE_MISMATCH
    assert "property count" in caught.value.message
    chain.apply(
        chain.signer("acme").update("88/P-12", [meta({**GOOD, "count": 3})], now_ms=chain.now_ms)
    )
    # and a new record is judged by the new template
    assert refused(chain, "88/P-13", ref(), meta(GOOD)).code is ErrorCode.TEMPLATE_MISMATCH


def test_values_below_index_2000_are_not_metadata(chain: RulesChain) -> None:
    register(chain, "88/P-14", value(5, "lot", "anything"), ref(), meta(GOOD))
    assert re.fullmatch(r"88/P-14", chain.record("88/P-14").identifier)  # type: ignore[union-attr]
