"""The gateway's pure parts: Handle.Net's value shape and the readiness rule."""

from __future__ import annotations

import logging
import sys

import pytest

from sparkchain.node.gateway import (
    BadRequestFilter,
    handle_record_json,
    handle_value_json,
    readiness,
)
from sparkchain.node.logs import RateLimitedLog
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb

KEYS = [bytes([i]) * 32 for i in range(1, 5)]  # four validators, the first is "us"


def peer(key: bytes, connected: bool = True, height: int = 10) -> api_pb2.PeerInfo:
    return api_pb2.PeerInfo(validator=key, connected=connected, height=height)


def test_text_is_a_string_and_other_bytes_base64_with_the_default_ttl() -> None:
    text = handle_value_json(pb.Value(index=1, type="URL", data=b"https://e.x", timestamp_ms=0))
    assert text == {
        "index": 1,
        "type": "URL",
        "data": {"format": "string", "value": "https://e.x"},
        "ttl": 86400,
        "timestamp": "1970-01-01T00:00:00Z",
    }
    raw = handle_value_json(pb.Value(index=2, type="K", data=b"\xff", ttl=60))
    assert raw["data"] == {"format": "base64", "value": "/w=="} and raw["ttl"] == 60


def test_a_record_with_no_value_left_after_filtering_is_code_200() -> None:
    record = pb.Record(identifier="88/X", status=pb.REVOKED)
    answer = handle_record_json("88/x", record)
    assert answer == {
        "responseCode": 200,
        "handle": "88/x",
        "registeredAs": "88/X",
        "values": [],
        "status": "REVOKED",
    }


def test_a_validator_linked_to_a_quorum_and_caught_up_is_ready() -> None:
    peers = [peer(KEYS[1]), peer(KEYS[2]), peer(KEYS[3], connected=False)]
    state = readiness(height=10, syncing=False, is_validator=True, peers=peers, validator_keys=KEYS)
    assert state.ready


def test_a_validator_without_a_quorum_is_not_ready() -> None:
    peers = [peer(KEYS[1]), peer(KEYS[2], connected=False), peer(KEYS[3], connected=False)]
    state = readiness(height=10, syncing=False, is_validator=True, peers=peers, validator_keys=KEYS)
    assert not state.ready and "quorum is 3" in state.reason


def test_an_observer_behind_its_peers_or_syncing_is_not_ready() -> None:
    behind = readiness(
        height=5, syncing=False, is_validator=False, peers=[peer(KEYS[1])], validator_keys=KEYS
    )
    assert not behind.ready and "behind" in behind.reason
    one_behind = readiness(
        height=9, syncing=False, is_validator=False, peers=[peer(KEYS[1])], validator_keys=KEYS
    )
    assert one_behind.ready
    syncing = readiness(
        height=10, syncing=True, is_validator=False, peers=[peer(KEYS[1])], validator_keys=KEYS
    )
    assert not syncing.ready


def test_a_lone_single_validator_chain_is_ready() -> None:
    state = readiness(height=0, syncing=False, is_validator=True, peers=[], validator_keys=KEYS[:1])
    assert state.ready


def test_requests_aiohttp_cannot_parse_are_logged_once_per_interval_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0]
    rate_limited = RateLimitedLog(
        logging.getLogger("spark.gateway"), 1000, clock_ms=lambda: clock[0]
    )
    bad_requests = BadRequestFilter(rate_limited)
    try:
        raise ValueError("Got more than 8192 bytes\n when reading")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "", 0, "Error", None, sys.exc_info())
    with caplog.at_level(logging.DEBUG, "spark.gateway"):
        assert not bad_requests.filter(record)  # aiohttp's own line is dropped
        assert not bad_requests.filter(record)
        clock[0] = 1000
        bad_requests.filter(record)
    lines = [r for r in caplog.records if r.getMessage() == "http_bad_request"]
    assert len(lines) == 2 and not any(r.exc_info for r in lines)
    assert lines[0].__dict__["error"] == "Got more than 8192 bytes when reading"
    assert lines[1].__dict__["left_out"] == 1
