"""Issue 10's attacks, scaled down, against one 4-validator + 1-observer testnet of real
processes with small configured limits: during each, the chain keeps committing the
workload's registrations and the attacker gets no more than its bound.

The same attack functions run at the outside review's sizes in `make attack`
(bench/attack.py), which also compares commit latencies with and without the attack; here
there are no timing assertions, only "commits happened" and "the bound held".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import attack
from bench.attack_net import (
    AttackRun,
    Bound,
    Network,
    Outcome,
    PreparedAttack,
    Sizes,
    init_network,
    measure,
    start_network,
    stop_network,
)

pytestmark = pytest.mark.timeout(180)

# small limits, so that the small attacks below reach them
MEMPOOL_MAX_TXS = 200  # a signer's share: 50 txs
API_MAX_CONNECTIONS = 48

SMALL = Sizes(
    seconds=2.0,
    batch_bytes=300_000,
    signer_txs=400,
    peer_junk_calls=40,
    watch_streams=120,
    resolve_calls=4,
    resolve_bytes=8 * 1024 * 1024,
    idle_connections=150,
    malformed_calls=200,
)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    built = init_network(
        Path(tmp_path_factory.mktemp("attack")) / "net",
        mempool_max_txs=MEMPOOL_MAX_TXS,
        api_max_connections=API_MAX_CONNECTIONS,
    )
    try:
        start_network(built)
        yield built
    finally:
        stop_network(built)


def run(net: Network, run_attack: AttackRun) -> Outcome:
    outcome = asyncio.run(measure(net, run_attack.__name__, run_attack, SMALL))
    assert outcome.commits_during_attack > 0, outcome
    assert outcome.bound.held, outcome
    return outcome


def test_an_attack_is_prepared_before_its_baseline(net: Network) -> None:
    """An attacker's preparation (signing its txs) is not part of its attack: `measure`
    runs it before the unattacked baseline, so the attack starts a whole baseline later."""
    times: dict[str, float] = {}

    def prepare(net: Network, sizes: Sizes) -> str:
        times["prepared"] = time.monotonic()
        return "made"

    async def attack_made(net: Network, sizes: Sizes, made: str) -> Bound:
        times["ran"] = time.monotonic()
        await asyncio.sleep(1.0)
        return Bound(made == "made", "nothing")

    outcome = run(net, PreparedAttack(prepare, attack_made))
    assert outcome.attack == "attack_made"
    assert times["ran"] - times["prepared"] >= SMALL.seconds


def test_valid_big_batches_commit_while_the_workload_commits(net: Network) -> None:
    run(net, attack.big_batch)


def test_plaintext_junk_at_the_peer_ports_is_refused(net: Network) -> None:
    run(net, attack.peer_junk)


def test_an_unlisted_observer_with_a_ca_certificate_is_refused(net: Network) -> None:
    outcome = run(net, attack.unlisted_observer)
    assert "PERMISSION_DENIED" in outcome.bound.measure


def test_one_signer_holds_at_most_its_share_of_the_mempool(net: Network) -> None:
    outcome = run(net, attack.signer_flood)
    assert "refused" in outcome.bound.measure


def test_watch_streams_that_never_read_are_capped_per_client(net: Network) -> None:
    run(net, attack.watch_flood)


def test_huge_resolve_calls_are_refused_over_the_receive_limit(net: Network) -> None:
    run(net, attack.huge_resolve)


def test_idle_connections_beyond_the_cap_are_closed(net: Network) -> None:
    run(net, attack.idle_connections)


def test_malformed_requests_and_huge_hashes_get_no_internal_errors(
    net: Network,
) -> None:
    run(net, attack.malformed)
