"""Membership rules (DESIGN §12, ledger/validators.py) on the in-memory chain: what an
approved UpdateValidators schedules, from which height, and which approvals count.

The refusals, one per code, are cases in tests/test_rules_violations.py."""

from __future__ import annotations

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.ledger import validators
from tests.helpers.chain import RulesChain, governance_tx, key, update


def _keys(*names: str) -> tuple[bytes, ...]:
    return tuple(key(name).public_key for name in names)


GENESIS_KEYS = _keys("validator1", "validator2", "validator3", "validator4")


def _schedule(chain: RulesChain):
    schedule = chain.state.get_validator_schedule()
    assert schedule is not None
    return schedule


def test_the_set_never_changed_has_no_schedule_in_state() -> None:
    assert RulesChain().state.get_validator_schedule() is None


def test_an_added_validator_signs_from_two_heights_later() -> None:
    chain = RulesChain()
    chain.next_block()  # height 2
    receipt = chain.apply(governance_tx(chain, update(add=[("node5", "validator5")])))
    assert receipt.operation == "update_validators" and receipt.signer == ""
    schedule = _schedule(chain)
    assert validators.keys_at(schedule, 2) == GENESIS_KEYS
    assert validators.keys_at(schedule, 3) == GENESIS_KEYS
    assert validators.keys_at(schedule, 4) == GENESIS_KEYS + _keys("validator5")
    assert schedule.sets[-1].decided_height == 2


def test_remove_and_rotate_keep_the_order_and_the_rotated_place() -> None:
    chain = RulesChain()
    op = update(remove=["node2"], rotate=[("node3", "validator3-new")], add=[("n5", "v5")])
    chain.apply(governance_tx(chain, op))
    new_set = validators.set_at(_schedule(chain), chain.height + 2)
    assert [v.name for v in new_set] == ["node1", "node3", "node4", "n5"]
    assert new_set[1].public_key == key("validator3-new").public_key


def test_two_updates_in_one_block_build_on_each_other() -> None:
    chain = RulesChain()
    chain.apply(governance_tx(chain, update(add=[("node5", "validator5")]), nonce=1))
    chain.apply(governance_tx(chain, update(add=[("node6", "validator6")]), nonce=2))
    schedule = _schedule(chain)
    assert len(schedule.sets) == 2  # the genesis set for the next height, one new set
    assert validators.keys_at(schedule, chain.height + 2) == GENESIS_KEYS + _keys(
        "validator5", "validator6"
    )


def test_quorum_is_counted_on_the_set_of_the_height_the_tx_is_in() -> None:
    chain = RulesChain()
    chain.apply(governance_tx(chain, update(remove=["node1"], add=[("node5", "validator5")])))
    chain.next_block()
    # one height later the old set still signs: validator5's approval does not count yet
    too_early = governance_tx(
        chain, update(add=[("node6", "validator6")]), ["validator2", "validator3", "validator5"]
    )
    with pytest.raises(SparkError) as caught:
        chain.apply(too_early)
    assert caught.value.code is ErrorCode.NO_QUORUM
    chain.next_block()
    # now node1 is out and node5 in: the same approvers are a quorum of the new set
    chain.apply(too_early)
    schedule = _schedule(chain)
    assert validators.keys_at(schedule, chain.height + 2) == _keys(
        "validator2", "validator3", "validator4", "validator5", "validator6"
    )
    # the sets before the current one are gone from the state's schedule
    assert [s.from_height for s in schedule.sets] == [chain.height, chain.height + 2]


def test_a_quorum_of_seven_is_five() -> None:
    assert [validators.quorum_of(n) for n in (1, 2, 3, 4, 7)] == [1, 2, 3, 3, 5]
    assert [validators.max_removed(n) for n in (1, 3, 4, 7)] == [0, 0, 1, 2]


def test_a_single_validator_may_rotate_its_key_but_not_leave() -> None:
    from tests.helpers.chain import make_test_genesis

    chain = RulesChain(make_test_genesis(validators=1))
    with pytest.raises(SparkError) as caught:
        chain.apply(governance_tx(chain, update(remove=["node1"]), ["validator1"]))
    assert caught.value.code is ErrorCode.TOO_MANY_REMOVED
    chain.apply(governance_tx(chain, update(rotate=[("node1", "fresh")]), ["validator1"]))
    assert validators.keys_at(_schedule(chain), chain.height + 2) == _keys("fresh")


def test_schedule_round_trips_and_a_damaged_one_is_refused() -> None:
    chain = RulesChain()
    chain.apply(governance_tx(chain, update(add=[("node5", "validator5")])))
    raw = validators.encode_schedule(_schedule(chain))
    assert validators.decode_schedule(raw, ErrorCode.INVALID_PROOF) == _schedule(chain)
    with pytest.raises(SparkError) as caught:
        validators.decode_schedule(b"\x0a\x02\x08", ErrorCode.STORAGE_CORRUPT)
    assert caught.value.code is ErrorCode.STORAGE_CORRUPT
