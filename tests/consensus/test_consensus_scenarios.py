"""Named fault scenarios on the simulator: each must stay safe and, when its faults are
within what the protocol tolerates, make progress once the network heals."""

from __future__ import annotations

import random

from consensus_scenarios import check, key_of, run_all, run_ok

from sparkchain.consensus.sim import cli
from sparkchain.consensus.sim.plan import Crash, Partition, Plan, random_plan
from sparkchain.consensus.sim.runner import run_plan


def test_leader_in_minority_partition_then_heal():
    # validator 1 proposes height 1 round 0 but is cut off from the three others
    plan = Plan(seed=4, n=4, heights=3, partitions=(Partition(0, 3000, ((1,), (0, 2, 3))),))
    result = run_ok(plan)
    majority_first = max(result.commit_times[(node, 1)] for node in (0, 2, 3))
    assert majority_first < 3000  # the majority did not wait for the leader
    assert result.commit_times[(1, 1)] >= 3000  # the leader caught up after the heal
    assert b"|n1|r0" not in result.chains[0][0]  # its round-0 value never reached anyone
    assert len({tuple(chain[:3]) for chain in result.chains.values()}) == 1


def test_majority_without_quorum_waits_and_then_recovers():
    # 2 | 2: nobody has a quorum until the heal, then every height commits
    plan = Plan(seed=5, n=4, heights=2, partitions=(Partition(0, 2500, ((0, 1), (2, 3))),))
    result = run_ok(plan)
    assert min(result.commit_times.values()) >= 2500


def test_equivocating_proposer_cannot_fork():
    plans = [
        Plan(seed=s, n=4, heights=3, byzantine=((1, "equivocating-proposer"),), loss=0.1)
        for s in range(12)
    ]
    results = run_all(plans)
    assert any(key_of(1) in r.evidence_against for r in results)  # its split votes are seen


def test_restart_without_last_signed_record_is_caught():
    # validator 2 votes, crashes and comes back without its record while node 3 is cut off,
    # so the others need it: it votes again, differently, and the correct nodes catch it
    def plan(seed: int, keep_record: bool) -> Plan:
        rng = random.Random(seed)
        at = rng.randint(0, 200)
        crash = Crash(2, at, at + rng.randint(1, 100), keep_record)
        cut = Partition(0, 1500, ((0, 1, 2), (3,)))
        return Plan(seed=seed, n=4, heights=2, crashes=(crash,), partitions=(cut,))

    caught = None
    for seed in range(200):
        result = check(run_plan(plan(seed, keep_record=False)))
        if key_of(2) in result.evidence_against:
            caught = seed
            break
    assert caught is not None, "no seed made the amnesiac validator vote twice"
    assert key_of(2) in result.double_signers
    # the same run with its record intact never signs twice
    intact = run_ok(plan(caught, keep_record=True))
    assert intact.double_signers == set() and intact.evidence_against == set()


def test_restart_with_last_signed_record_never_double_signs():
    plans = []
    for seed in range(25):
        rng = random.Random(seed)
        crashes = []
        for node in rng.sample(range(4), 2):
            at = rng.randint(0, 1500)
            crashes.append(Crash(node, at, at + rng.randint(1, 800), True))
        plans.append(Plan(seed=seed, n=4, heights=3, crashes=tuple(crashes), loss=0.1, gst_ms=1500))
    for result in run_all(plans):
        assert result.double_signers == set()


def test_double_voter_is_reported_as_evidence_and_cannot_fork():
    # a healthy height ends before anyone relays; lost messages make them gossip
    plans = [
        Plan(seed=s, n=4, heights=2, byzantine=((3, "double-voter"),), loss=0.3, gst_ms=2000)
        for s in range(8)
    ]
    results = run_all(plans)
    assert any(key_of(3) in r.evidence_against for r in results)


def test_invalid_block_proposer_never_gets_its_block_committed():
    plans = [
        Plan(seed=s, n=4, heights=4, byzantine=((s % 4, "invalid-proposer"),)) for s in range(8)
    ]
    for result in run_all(plans):
        assert not any(v.startswith(b"invalid") for chain in result.chains.values() for v in chain)


def test_votes_for_unknown_blocks_do_not_stall_or_fork():
    plans = [
        Plan(seed=s, n=7, heights=2, byzantine=((1, "unknown-voter"), (4, "unknown-voter")))
        for s in range(6)
    ]
    run_all(plans)


def test_silent_validators_up_to_f_are_skipped():
    plan = Plan(seed=3, n=7, heights=4, byzantine=((1, "silent"), (2, "silent")))
    result = run_ok(plan)
    assert not any(b"|n1|" in v or b"|n2|" in v for v in result.chains[0])


def test_coalition_just_under_a_third_cannot_fork():
    plans = [
        Plan(
            seed=s,
            n=7,
            heights=2,
            byzantine=((s % 7, "coalition"), ((s + 3) % 7, "coalition")),
            loss=0.2,
            pre_gst_max_delay_ms=200,
            gst_ms=2000,
        )
        for s in range(10)
    ]
    results = run_all(plans)
    assert any(r.evidence_against for r in results)


def test_one_twin_within_f_is_safe_even_when_the_twins_are_split():
    twin_split = Partition(0, 2000, ((0, 1, 2), (3, 4)))  # node 4 is validator 0's twin
    plans = [Plan(seed=s, n=4, heights=2, twins=(0,), partitions=(twin_split,)) for s in range(8)]
    results = run_all(plans)
    assert any(key_of(0) in r.double_signers for r in results)


def test_cluster_with_real_ed25519_commits():
    plan = Plan(seed=2, n=4, heights=3, real_crypto=True, loss=0.1, gst_ms=500)
    result = run_ok(plan)
    assert min(len(chain) for chain in result.chains.values()) >= 3


def test_crashed_validator_catches_up_by_sync():
    plan = Plan(seed=6, n=4, heights=4, crashes=(Crash(2, 0, 3000, True),))
    result = run_ok(plan)
    assert result.commit_times[(2, 1)] >= 3000
    assert result.chains[2][:4] == result.chains[0][:4]


def test_a_run_replays_exactly_from_its_plan():
    plan = random_plan(1234)
    first, second = run_plan(plan), run_plan(Plan.from_json(plan.to_json()))
    assert Plan.from_json(plan.to_json()) == plan
    assert (first.events, first.end_ms, first.chains) == (
        second.events,
        second.end_ms,
        second.chains,
    )
    assert (
        first.replay_command
        == f"python -m sparkchain.consensus.sim.cli --replay '{plan.to_json()}'"
    )


def test_cli_replays_one_plan_and_runs_a_batch(capsys):
    assert cli.main(["--replay", Plan(seed=1, n=4, heights=2).to_json()]) == 0
    assert cli.main(["--seeds", "24", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "24 scenarios, 0 failed" in out


def _signers(result, node: int, height: int) -> set[bytes]:
    return {sig.validator for sig in result.certificates[node][height - 1].signatures}


def test_set_change_at_a_height_switches_who_signs():
    # from height 3 validator 0 is out and validator 4 (a new node) is in; the set of each
    # height alone signs it, the newcomer's node commits every height, and so does the leaver
    plan = Plan(seed=7, n=4, heights=5, change_height=3, joiners=1, leavers=(0,))
    result = run_ok(plan)
    assert result.finished
    for node in range(plan.node_count):
        assert result.heights[node] >= 5
        for height in (1, 2):
            assert _signers(result, node, height) <= {key_of(i) for i in range(4)}
        for height in (3, 4, 5):
            assert _signers(result, node, height) <= {key_of(i) for i in (1, 2, 3, 4)}
    assert any(key_of(4) in _signers(result, 0, h) for h in (3, 4, 5))


def test_set_change_with_a_crash_across_it_stays_safe_and_live():
    # validator 1 crashes before the change and comes back after it (with its record);
    # validator 3 is removed and two join, over many seeds and lossy links
    plans = [
        Plan(
            seed=s,
            n=4,
            heights=5,
            change_height=2,
            joiners=2,
            leavers=(3,),
            crashes=(Crash(1, 40 + 3 * s, 1500 + 41 * s, True),),
            loss=0.05 * (s % 3),
        )
        for s in range(20)
    ]
    spanning = 0
    for result in run_all(plans):
        assert result.finished
        assert all(h >= 5 for h in result.heights.values())
        crash = result.plan.crashes[0]
        change_committed = min(t for (_, h), t in result.commit_times.items() if h == 2)
        spanning += crash.at_ms < change_committed < (crash.restart_ms or 0)
    assert spanning >= 10  # most runs really crash before the change and restart after it


def test_set_change_beyond_the_fault_bound_is_not_promised():
    # removing two of four correct validators while one of the rest is byzantine leaves
    # 1 faulty of 2 in the new set: the plan does not expect safety there
    plan = Plan(seed=1, n=4, change_height=2, leavers=(0, 1), byzantine=((2, "double-voter"),))
    assert not plan.expects_safety
    assert Plan(seed=1, n=4, change_height=2, leavers=(0,)).expects_safety


def test_random_plans_cover_set_changes():
    plans = [random_plan(seed) for seed in range(60)]
    changes = [p for p in plans if p.change_height]
    assert any(p.joiners for p in changes) and any(p.leavers for p in changes)
    assert any(p.crashes for p in changes)
    run_all(changes[:15])
