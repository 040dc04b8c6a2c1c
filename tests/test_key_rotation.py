"""Key rotation (DESIGN §12): the chain moves a validator to a new key two heights after
the change, and its node, restarted with the new key, carries the old key's last-signed
record over, so it cannot sign again what the old key signed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sparkchain.consensus.lastsigned import NO_LOCK, LastSigned, Permission, permission
from sparkchain.consensus.messages import Step
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tx import tx_id
from sparkchain.node.driver import ConsensusDriver, read_last_signed
from tests.helpers.chain import RulesChain, governance_tx, key, update
from tests.test_driver import Line

NEW_KEY = key("validator2-rotated")


def test_a_carried_record_refuses_even_the_old_keys_last_message() -> None:
    old = LastSigned(
        key("a").public_key, 7, 2, Step.PREVOTE, b"\x01" * 32, -1, b"\x02" * 64, NO_LOCK
    )
    carried = old.carried_to(NEW_KEY.public_key)
    assert carried.public_key == NEW_KEY.public_key
    assert LastSigned.from_bytes(carried.to_bytes()) == carried
    assert permission(carried, 7, 2, Step.PREVOTE, b"\x01" * 32, -1) is Permission.REFUSE
    assert permission(carried, 7, 1, Step.PRECOMMIT, b"\x01" * 32, -1) is Permission.REFUSE
    assert permission(carried, 7, 2, Step.PRECOMMIT, b"\x01" * 32, -1) is Permission.SIGN


def _restart_with(node, new_key, path: Path) -> None:  # type: ignore[no-untyped-def]
    old = node.driver
    node.key = new_key
    node.driver = ConsensusDriver(
        ledger=node.ledger,
        mempool=node.mempool,
        committer=node.committer,
        network=node,
        key=new_key,
        config=old._config,
        last_signed_path=path,
        on_future_height=lambda _height: node.catch_up(),
        clock_ms=node.clock_ms,
        relay_interval_ms=2000,
    )


async def test_a_rotated_validator_signs_on_with_its_new_key(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    line = Line(tmp_path, loop, empty_block_interval_ms=500)
    first, middle, _ = line.nodes
    for node in line.nodes:
        node.driver.start()
    try:
        clock = RulesChain(first.ledger.genesis)
        clock.time_ms = first.clock_ms()
        rotation = governance_tx(clock, update(rotate=[("node2", "validator2-rotated")]))
        for node in line.nodes:
            await node.mempool.add(rotation)
        assert await line.run_until(lambda: first.bus.committed(tx_id(rotation)), 300)
        decided = first.ledger.get_tx(tx_id(rotation))[1]
        # from decided + 2 the old key of node2 no longer counts: three of three need the new
        assert await line.run_until(lambda: min(line.heights()) >= decided + 1, 300)
        await middle.driver.close()
        path = tmp_path / "n2" / "last_signed"
        old_record = read_last_signed(path)
        assert old_record is not None and old_record.public_key == key("validator2").public_key
        _restart_with(middle, NEW_KEY, path)
        middle.driver.start()
        assert await line.run_until(lambda: min(line.heights()) >= decided + 4, 600)
        record = read_last_signed(path)
        assert record is not None and record.public_key == NEW_KEY.public_key
        assert (record.height, record.round) > (old_record.height, old_record.round)
        _, _, certificate = first.ledger.get_block(decided + 3)
        assert certificate is not None
        assert NEW_KEY.public_key in {s.validator for s in certificate.signatures}
        assert key("validator2").public_key not in {s.validator for s in certificate.signatures}
    finally:
        await line.close()


async def test_a_record_of_a_key_never_rotated_to_ours_stops_the_start(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    line = Line(tmp_path, loop)
    middle = line.nodes[1]
    try:
        path = tmp_path / "n2" / "last_signed"
        old = LastSigned(key("validator2").public_key, 1, 0, Step.PREVOTE, b"", -1, b"\x02" * 64)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(old.to_bytes())
        _restart_with(middle, NEW_KEY, path)
        with pytest.raises(SparkError) as caught:
            middle.driver.start()
        assert caught.value.code is ErrorCode.INVALID_CONFIG
        assert str(path) in caught.value.message
        assert read_last_signed(path) == old  # left as it was
    finally:
        await line.close()
