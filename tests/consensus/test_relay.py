"""The relay (consensus/relay.py), which the node's driver and the simulator both run:
what each validator peer is sent again, and when."""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus_scenarios import run_ok

from sparkchain.consensus.messages import Message, Proposal, Vote, VoteType
from sparkchain.consensus.relay import PeerView, Relay, message_key
from sparkchain.consensus.sim.plan import Plan
from sparkchain.identifiers.limits import RELAY_FULL_RESEND_INTERVALS

ME, OTHER = b"m" * 32, b"o" * 32


@dataclass
class FakeCore:
    height: int
    everything: list[Message] = field(default_factory=list)
    own: list[Message] = field(default_factory=list)

    def height_messages(self) -> list[Message]:
        return list(self.everything)

    def own_messages(self) -> list[Message]:
        return list(self.own)


def _core(height: int = 5) -> FakeCore:
    mine = Vote(VoteType.PREVOTE, height, 0, b"h" * 32, ME, b"s" * 64)
    theirs = Vote(VoteType.PREVOTE, height, 0, b"h" * 32, OTHER, b"t" * 64)
    proposal = Proposal(height, 0, -1, b"h" * 32, b"block", OTHER, b"u" * 64)
    return FakeCore(height, [proposal, theirs, mine], [mine])


def test_a_peer_at_our_height_gets_the_whole_height_on_link_up() -> None:
    core = _core()
    sent = Relay().link_up(PeerView(b"p", 1, core.height - 1), core)
    assert [message_key(m) for m in sent] == [message_key(m) for m in core.everything]


def test_a_peer_at_another_height_gets_our_own_messages_on_link_up() -> None:
    core = _core()
    assert Relay().link_up(PeerView(b"p", 1, core.height + 3), core) == core.own


def test_a_stuck_peer_gets_what_it_was_not_sent_then_ours_and_all_again_periodically() -> None:
    core, relay = _core(), Relay()
    peer = PeerView(b"p", 1, core.height - 1)
    assert relay.tick([peer], core) == []  # the first look: no interval without progress yet
    sizes = []
    for _ in range(2 * RELAY_FULL_RESEND_INTERVALS):
        (order,) = relay.tick([peer], core)
        assert order.peer == b"p" and order.announce_height
        sizes.append(len(order.messages))
    everything, own = len(core.everything), len(core.own)
    expected = [everything] + [own] * (RELAY_FULL_RESEND_INTERVALS - 2) + [everything]
    expected += [own] * (RELAY_FULL_RESEND_INTERVALS - 1) + [everything]
    assert sizes == expected


def test_progress_resets_the_interval_and_a_new_connection_is_a_new_link() -> None:
    core, relay = _core(), Relay()
    peer = PeerView(b"p", 1, core.height - 1)
    relay.tick([peer], core)
    assert relay.tick([peer], core)  # stuck: repaired
    assert relay.tick([PeerView(b"p", 1, core.height)], core) == []  # it committed: progress
    assert relay.tick([PeerView(b"p", 2, core.height)], core) == []  # reconnected: look again


def test_a_peer_behind_or_ahead_is_only_told_our_height() -> None:
    core, relay = _core(), Relay()
    behind, ahead = PeerView(b"b", 1, core.height - 3), PeerView(b"a", 1, core.height + 2)
    relay.tick([behind, ahead], core)
    orders = relay.tick([behind, ahead], core)
    assert [(o.peer, o.messages, o.announce_height) for o in orders] == [
        (b"b", [], True),
        (b"a", [], True),
    ]


def test_a_peer_whose_link_went_down_is_forgotten() -> None:
    core, relay = _core(), Relay()
    peer = PeerView(b"p", 1, core.height - 1)
    relay.tick([peer], core)
    relay.tick([], core)  # its link is down
    assert relay.tick([peer], core) == []  # back: a first look again


# Plans that halted when the simulator first ran the node's relay: a lost height
# announcement left one node's view of another's height stale, so the relay never repaired
# a peer it took to be behind (it re-announces our height every stuck interval now).
STALE_VIEW_PLANS = [
    '{"seed":14541,"n":4,"heights":2,"loss":0.5,"duplicate":0.2,"max_delay_ms":38,'
    '"pre_gst_max_delay_ms":60,"gst_ms":716}',
    '{"seed":1984,"n":4,"heights":1,"crashes":[{"node":1,"at_ms":2904,"restart_ms":5630,'
    '"keep_record":true}],"loss":0.5,"duplicate":0.2,"max_delay_ms":26,'
    '"pre_gst_max_delay_ms":200,"gst_ms":2782}',
    '{"seed":1870,"n":4,"heights":2,"crashes":[{"node":1,"at_ms":2091,"restart_ms":3521,'
    '"keep_record":true},{"node":0,"at_ms":2182,"restart_ms":2946,"keep_record":true}],'
    '"partitions":[{"start_ms":1368,"end_ms":4153,"groups":[[1,3],[0,2]]},{"start_ms":1227,'
    '"end_ms":5076,"groups":[[1],[0,2,3]]}],"loss":0.5,"max_delay_ms":50,'
    '"pre_gst_max_delay_ms":60,"gst_ms":3576}',
]


def test_plans_that_stalled_on_a_stale_view_of_a_peers_height_commit() -> None:
    for plan in STALE_VIEW_PLANS:
        assert run_ok(Plan.from_json(plan)).finished
