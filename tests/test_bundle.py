"""Proof bundles built and checked in-process (ledger/bundle.py): what verifies, and that
every malformed input is refused with ProofError and its reason, never another exception.
The tampered-field catalogue is in tests/vectors/ (tests/test_vectors.py)."""

from __future__ import annotations

import base64
import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from sparkchain.identifiers.limits import MAX_BUNDLE_JSON_BYTES, MAX_BUNDLE_STATE_PROOF_BYTES
from sparkchain.ledger.bundle import build_bundle, parse_bundle_json, verify_bundle
from sparkchain.ledger.genesis import Genesis
from sparkchain.ledger.handle_view import utc_timestamp_text
from sparkchain.ledger.proof import ProofError, ProofFailure
from sparkchain.node.gateway import handle_value_json
from tests.helpers.chain import value
from tests.helpers.ledger import LedgerChain, register_widget

Bundle = dict[str, Any]


def _bundle(chain: LedgerChain, identifier: str) -> Bundle:
    _, proof = chain.ledger.resolve_with_proof(identifier)
    return build_bundle(chain.genesis, identifier, proof)


def _reason(bundle: object, genesis: Genesis) -> ProofFailure:
    with pytest.raises(ProofError) as refused:
        verify_bundle(bundle, genesis)
    return refused.value.reason


@pytest.fixture
def widget(ledger_chain: LedgerChain) -> Bundle:
    register_widget(ledger_chain)
    return _bundle(ledger_chain, "88/widget-1")


def test_a_bundle_verifies_for_a_present_and_an_absent_identifier(
    ledger_chain: LedgerChain, widget: Bundle
) -> None:
    verified = verify_bundle(widget, ledger_chain.genesis)
    assert verified.record is not None and verified.record.identifier == "88/Widget-1"
    assert (verified.height, verified.signers, verified.validators) == (1, 3, 4)
    assert widget["identifier"] == "88/widget-1"  # as asked: lookups ignore ASCII case
    assert widget["record"]["view"]["handle"] == "88/Widget-1"
    absent = verify_bundle(_bundle(ledger_chain, "88/none"), ledger_chain.genesis)
    assert absent.record is None and absent.height == 1


def test_a_bundle_carries_the_set_changes_and_verifies_from_the_genesis_alone(
    tmp_path: Any,
) -> None:
    from tests.helpers.chain import key, make_test_genesis
    from tests.helpers.vectors import CHANGED, SET_1, SET_2, build_changing_chain

    built = build_changing_chain(tmp_path)
    text = json.dumps(built, indent=2, ensure_ascii=False).encode()
    bundle = parse_bundle_json(text)
    assert isinstance(bundle, dict)
    genesis = make_test_genesis(validators=4)
    changes = bundle["validator_changes"]
    assert [c["header"]["view"]["height"] for c in changes] == [2, 4]
    assert [c["validators"] for c in changes] == [
        [key(name).public_key.hex() for name in names] for names in (SET_1, SET_2)
    ]
    verified = verify_bundle(bundle, genesis)
    assert verified.record is not None and verified.record.identifier == CHANGED
    assert (verified.height, verified.signers, verified.validators) == (5, 3, 4)
    # each entry's form is checked like the bundle's own parts
    for field, item in (("validators", []), ("validators", ["AB" * 32]), ("header", None)):
        broken = copy.deepcopy(bundle)
        broken["validator_changes"][0][field] = item
        assert _reason(broken, genesis) == ProofFailure.MALFORMED, (field, item)
    broken = copy.deepcopy(bundle)
    broken["validator_changes"][1]["certificate"]["view"]["round"] = 1
    assert _reason(broken, genesis) == ProofFailure.VIEW_MISMATCH
    broken = copy.deepcopy(bundle)
    broken["validator_changes"] = []  # the header then names a set the genesis does not
    assert _reason(broken, genesis) == ProofFailure.WRONG_VALIDATORS


def test_a_bundle_survives_its_json_text(ledger_chain: LedgerChain, widget: Bundle) -> None:
    text = json.dumps(widget, indent=2, ensure_ascii=False).encode()
    assert verify_bundle(parse_bundle_json(text), ledger_chain.genesis).height == 1


def test_views_compare_as_json_so_true_is_not_1_and_1_0_is_not_1(
    ledger_chain: LedgerChain, widget: Bundle
) -> None:
    for shown in (1.0, True, "1"):
        bundle = copy.deepcopy(widget)
        bundle["header"]["view"]["height"] = shown
        assert _reason(bundle, ledger_chain.genesis) == ProofFailure.VIEW_MISMATCH
    bundle = copy.deepcopy(widget)
    bundle["record"]["view"]["extra"] = "a field the bytes do not hold"
    assert _reason(bundle, ledger_chain.genesis) == ProofFailure.VIEW_MISMATCH


def test_every_field_of_a_wrong_type_is_malformed_never_a_crash(
    ledger_chain: LedgerChain, widget: Bundle
) -> None:
    wrong = (None, 7, "x", [], {}, True, 1.5)
    for field in widget:
        for item in wrong:
            if item == widget[field] or (field == "record" and item is None):
                continue
            bundle = copy.deepcopy(widget)
            bundle[field] = item
            assert _reason(bundle, ledger_chain.genesis) in (
                ProofFailure.MALFORMED,
                ProofFailure.UNSUPPORTED_VERSION,
                ProofFailure.WRONG_CHAIN,
                ProofFailure.GENESIS_MISMATCH,
            ), (field, item)
    for part in ("record", "header", "certificate"):
        for inner in ("bytes", "view"):
            for item in wrong:
                bundle = copy.deepcopy(widget)
                bundle[part][inner] = item
                reason = _reason(bundle, ledger_chain.genesis)
                assert reason in (ProofFailure.MALFORMED, ProofFailure.VIEW_MISMATCH), (part, item)
        bundle = copy.deepcopy(widget)
        del bundle[part]["view"]
        assert _reason(bundle, ledger_chain.genesis) == ProofFailure.MALFORMED
    for not_a_bundle in (None, [], "bundle", 3):
        assert _reason(not_a_bundle, ledger_chain.genesis) == ProofFailure.MALFORMED


def test_not_an_object_or_another_format_is_refused(
    ledger_chain: LedgerChain, widget: Bundle
) -> None:
    assert _reason([widget], ledger_chain.genesis) == ProofFailure.MALFORMED
    bundle = copy.deepcopy(widget)
    bundle["format"] = "something-else"
    assert _reason(bundle, ledger_chain.genesis) == ProofFailure.UNSUPPORTED_VERSION
    bundle = copy.deepcopy(widget)
    del bundle["identifier"]
    assert _reason(bundle, ledger_chain.genesis) == ProofFailure.MALFORMED
    bundle = copy.deepcopy(widget)
    bundle["identifier"] = "no slash"
    assert _reason(bundle, ledger_chain.genesis) == ProofFailure.MALFORMED


def test_base64_must_be_canonical_and_bounded(ledger_chain: LedgerChain, widget: Bundle) -> None:
    bundle = copy.deepcopy(widget)
    # "AB==" decodes to the byte of "AA==": only the form with zero padding bits counts
    assert base64.b64decode("AB==") == base64.b64decode("AA==")
    bundle["state_proof"] = "AB=="
    with pytest.raises(ProofError, match="canonical base64"):
        verify_bundle(bundle, ledger_chain.genesis)
    bundle["state_proof"] = "A" * (4 * (MAX_BUNDLE_STATE_PROOF_BYTES // 3 + 2))
    with pytest.raises(ProofError, match="longer than"):
        verify_bundle(bundle, ledger_chain.genesis)
    bundle["state_proof"] = "ÄÄÄÄ"
    assert _reason(bundle, ledger_chain.genesis) == ProofFailure.MALFORMED


def test_bundle_json_is_bounded_utf8_without_repeated_keys() -> None:
    for data in (b'{"a": 1, "a": 2}', b"\xff{}", b"{", b"[" * 100_000, b"1" * 5000):
        with pytest.raises(ProofError) as refused:
            parse_bundle_json(data)
        assert refused.value.reason == ProofFailure.MALFORMED
    with pytest.raises(ProofError, match="at most"):
        parse_bundle_json(b" " * (MAX_BUNDLE_JSON_BYTES + 1))


def test_a_proof_from_another_genesis_is_refused(tmp_path: Any) -> None:
    from tests.helpers.chain import make_test_genesis

    chain = LedgerChain(tmp_path / "other", make_test_genesis(validators=4))
    try:
        register_widget(chain)
        bundle = _bundle(chain, "88/Widget-1")
    finally:
        chain.close()
    other = make_test_genesis(validators=3)  # same chain id, another validator set
    assert _reason(bundle, other) == ProofFailure.GENESIS_MISMATCH
    bundle["genesis_hash"] = other.genesis_hash.hex()
    assert _reason(bundle, other) == ProofFailure.WRONG_VALIDATORS


def test_the_record_view_is_the_gateway_rendering_of_each_value(
    ledger_chain: LedgerChain,
) -> None:
    acme = ledger_chain.signer("acme")
    values = [value(1, "URL", "https://example.com/ü"), value(2, "BIN", b"\xff\x00")]
    ledger_chain.commit([acme.register("88/V", values, now_ms=ledger_chain.next_time_ms)])
    record, _ = ledger_chain.ledger.resolve_with_proof("88/V")
    assert record is not None
    view = _bundle(ledger_chain, "88/V")["record"]["view"]
    assert view["values"] == [handle_value_json(v) for v in record.values]
    assert [v["data"]["format"] for v in view["values"]] == ["string", "base64"]


def test_utc_timestamps_are_the_calendar_dates() -> None:
    rng = random.Random(11)
    moments = [0, 951_782_400_000, 4_107_542_399_999] + [
        rng.randrange(0, 253_402_300_799_999) for _ in range(20_000)
    ]
    for ms in moments:
        expected = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert utc_timestamp_text(ms) == expected, ms
