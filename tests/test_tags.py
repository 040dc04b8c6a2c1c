"""Domain-separation tags (identifiers/tags.py): one place, none a prefix of another."""

from __future__ import annotations

from itertools import permutations

from sparkchain.identifiers import tags

ALL_TAGS = {
    name: value for name, value in vars(tags).items() if name.isupper() and isinstance(value, bytes)
}


def test_the_module_defines_the_tags_we_expect() -> None:
    assert {"TX_TAG", "VOTE_TAG", "PROPOSAL_TAG", "PEER_HANDSHAKE_TAG"} <= set(ALL_TAGS)
    assert set(tags.SIGNING_TAGS) <= set(ALL_TAGS.values())


def test_no_signing_tag_is_a_prefix_of_another() -> None:
    for a, b in permutations(tags.SIGNING_TAGS, 2):
        assert not b.startswith(a), (a, b)


def test_no_tag_at_all_is_a_prefix_of_another() -> None:
    for (name_a, a), (name_b, b) in permutations(ALL_TAGS.items(), 2):
        assert not b.startswith(a), (name_a, name_b)


def test_tags_are_distinct() -> None:
    assert len(set(ALL_TAGS.values())) == len(ALL_TAGS)


def test_signing_tags_are_versioned() -> None:
    for tag in tags.SIGNING_TAGS:
        assert tag.startswith(b"spark/") and tag.rsplit(b"/", 1)[1].startswith(b"v"), tag
