"""Write the seed corpus: `python -m fuzz.seeds [--output fuzz/corpus]`.

Per target, small valid inputs made from the fuzz world (fuzz/world.py) plus a few
hand-made edge cases (empty input, truncations, deep nesting, huge lengths, surrogates).
Deterministic: running it again writes the same files (named by the SHA-1 of their bytes,
as libFuzzer names the inputs it keeps).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

from fuzz.peer_stream import OUR_NONCE, _Harness, frame, frames
from fuzz.targets import TARGETS
from fuzz.world import NEXT_HEIGHT, VECTORS, world
from sparkchain.consensus.messages import VoteType
from sparkchain.consensus.sim.fakecrypto import FakeSigner
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.tags import PROPOSAL_TAG, VOTE_TAG
from sparkchain.identifiers.tx import approve_body, governance_body
from sparkchain.ledger.genesis import genesis_to_json
from sparkchain.node.config import config_to_toml
from sparkchain.node.home import node_config
from sparkchain.node.peer_handshake import LocalPeer, answer
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import key

CORPUS = Path(__file__).resolve().parent / "corpus"
DEEP = 5000  # nesting beyond Python's recursion limit


def _protobuf_groups(depth: int) -> bytes:
    # start-group tags of field 15, never closed: a parser that recurses per group
    return bytes([0x7B]) * depth


def tx_envelopes() -> list[bytes]:
    w = world()
    seeds = [t.SerializeToString() for t in w.seed_txs]
    update = pb.UpdateValidators()
    update.add.add(name="node5", public_key=key("validator5").public_key)
    body = governance_body(w.genesis.chain_id, 7, w.next_time_ms + 60_000, update)
    approvals = [approve_body(body, key(f"validator{n}")) for n in (1, 2, 3)]
    seeds.append(pb.SignedTx(body=body, approvals=approvals).SerializeToString())
    return [*seeds, b"", b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x02\x08", _protobuf_groups(64)]


def tx_bodies() -> list[bytes]:
    bodies = [pb.SignedTx.FromString(raw).body for raw in tx_envelopes()[:10]]
    two_ops = bodies[0] + bodies[0][bodies[0].index(b"\x52") :] if b"\x52" in bodies[0] else b""
    return [*bodies, two_ops, bodies[0] + b"\xf8\x07\x01", b"\x08" + b"\xff" * 10 + b"\x01"]


def blocks() -> list[bytes]:
    w = world()
    block = pb.Block.FromString(w.next_block)
    empty = pb.Block(header=block.header, last_commit=block.last_commit)
    return [w.next_block, empty.SerializeToString(), b"", b"\x0a\x03abc", _protobuf_groups(DEEP)]


def sync_responses() -> list[bytes]:
    w = world()
    committed = peer_pb2.CommittedBlock(block=pb.Block.FromString(w.next_block))
    committed.commit.CopyFrom(w.next_certificate)
    early = peer_pb2.CommittedBlock()
    early.CopyFrom(committed)
    early.commit.height = NEXT_HEIGHT + 1
    return [committed.SerializeToString(), early.SerializeToString(), b""]


def _proposal(height: int, round_: int, value: bytes, block_hash: bytes) -> peer_pb2.PeerMessage:
    proposer = world().genesis.validator_keys[(height + round_) % 4]
    message = peer_pb2.PeerMessage()
    message.proposal.CopyFrom(
        pb.Proposal(
            height=height,
            round=round_,
            valid_round=-1,
            block_hash=block_hash,
            block=value,
            proposer=proposer,
            signature=FakeSigner(proposer).sign(PROPOSAL_TAG, b""),
        )
    )
    return message


def _vote(kind: VoteType, height: int, round_: int, block_hash: bytes, n: int) -> bytes:
    validator = world().genesis.validator_keys[n]
    message = peer_pb2.PeerMessage()
    message.vote.CopyFrom(
        pb.Vote(
            type=pb.PREVOTE if kind is VoteType.PREVOTE else pb.PRECOMMIT,
            height=height,
            round=round_,
            block_hash=block_hash,
            validator=validator,
            signature=FakeSigner(validator).sign(VOTE_TAG, b""),
        )
    )
    return frame(message)


def peer_streams() -> list[bytes]:
    w = world()
    block_hash = w.next_certificate.block_hash
    dialer = LocalPeer(w.genesis.chain_id, key("validator1"), False, frozenset())
    hello = peer_pb2.PeerMessage()
    hello.handshake.CopyFrom(answer(dialer, bytes(32), OUR_NONCE, 1, key("validator4").public_key))
    txs = peer_pb2.PeerMessage()
    txs.txs.txs.extend(w.seed_txs[:2])
    status = peer_pb2.PeerMessage()
    status.status.height = 9
    decide = (
        frame(hello)
        + frame(_proposal(NEXT_HEIGHT, 0, w.next_block, block_hash))
        + b"".join(_vote(VoteType.PREVOTE, NEXT_HEIGHT, 0, block_hash, n) for n in range(3))
        + b"".join(_vote(VoteType.PRECOMMIT, NEXT_HEIGHT, 0, block_hash, n) for n in range(3))
    )
    rounds = b"".join(
        _vote(kind, NEXT_HEIGHT, round_, b"", n)
        for round_ in (0, 1, 5)
        for kind in (VoteType.PREVOTE, VoteType.PRECOMMIT)
        for n in range(4)
    )
    future = _vote(VoteType.PRECOMMIT, 40, 3, block_hash, 1) + frame(
        _proposal(NEXT_HEIGHT + 1, 0, w.next_block, block_hash)
    )
    return [decide, rounds, frame(txs) + frame(status) + future, b"", b"\x00\x05\xff\xff"]


def bundles() -> list[bytes]:
    names = sorted(
        p for p in VECTORS.glob("*.json") if p.name not in ("manifest.json", "genesis.json")
    )
    picked = [p.read_bytes() for p in names[:6]] + [
        p.read_bytes() for p in names if p.name.startswith("valid")
    ]
    return [*picked, b"[" * DEEP, b'{"version": 1e999999}', b"\xff\xfe{}", b"{}"]


def identifiers() -> list[bytes]:
    texts = [
        "88.608.24161301/SN-0001",
        "88/Widget-1",
        "88/a/b/c",
        "88.608/01/09506000134352/10/LOT%201",
        "88/caf\u00e9",
        "88/e\u0301",
        "88/zero\u200bwidth",
        "88/\u202eevil",
        "88/ lead",
        "a.b.c.d.e.f.g.h/x",
        "88/" + "x" * 260,
        "88",
        "/x",
        "88//x",
    ]
    return [t.encode() for t in texts] + [b"88/\xff\xfe", b"88/\xed\xa0\x80", b""]


def prefixes() -> list[bytes]:
    return [b"88", b"88.608.24161301", b"a-b.C-d", b"88..1", b"-", b"88.\xc3\xa9", b"1" * 300]


def gtins() -> list[bytes]:
    return [
        b"09506000134352",
        b"4006381333931",
        b"12345670",
        b"614141000036",
        b"0" * 14,
        b"\xd9\xa1" * 8,
    ]


def digital_links() -> list[bytes]:
    return [
        b"https://id.gs1.org/01/09506000134352/10/ABC%2F1?17=201225",
        b"https://example.com/01/09506000134352/22/2A/10/L1/21/S%25N",
        b"https://example.com/8004/0950600013430000001",
        b"https://example.com/414/9506000134352/254/32a%2Fb",
        b"http://h/01/4006381333931?3103=000195&linkType=gs1:pip",
        b"https://h/01/09506000134352/10/%",
        b"https://h/01/09506000134352/10/%c3%28",
        b"https://[::1]/01/09506000134352",
    ]


def digital_link_paths() -> list[bytes]:
    return [
        b"/01/09506000134352/21/12345",
        b"01/09506000134352",
        b"/00/106141412345678908",
        b"/8004/0950600013430000001",
        b"/01/09506000134352/10/%E2%82%AC",
        b"/01/%30%39",
    ]


def bids() -> list[bytes]:
    public = key("acme").public_key
    return [
        bid_from_public_key(public).encode(),
        bid_from_public_key(public, "a1b2").encode(),
        public.hex().encode(),
        b"did:bid:ef",
        b"did:bid:ef" + b"z" * 200,
        b"did:bid:ABCD:efxyz",
    ]


def oids() -> list[bytes]:
    return [
        b"1.2.840.113549",
        b"2.999.1",
        b"0.39",
        b"1.40",
        b"2." + b"9" * 5000,
        b"1..2",
        b"\xd9\xa1.1",
    ]


def genesis_files() -> list[bytes]:
    w = world()
    return [
        genesis_to_json(w.genesis).encode(),
        (VECTORS / "genesis.json").read_bytes(),
        b'{"chain_id": ' + b"[" * DEEP,
        b'{"chain_id": "a", "chain_id": "b"}',
        b'{"genesis_time_ms": 1' + b"0" * 5000 + b"}",
    ]


def config_files() -> list[bytes]:
    node = node_config("node1", "validator", "127.0.0.1:7000", "127.0.0.1:7100", ["127.0.0.1:7101"])
    observer = node_config(
        "obs", "observer", "127.0.0.1:7001", "127.0.0.1:7102", http_listen="127.0.0.1:7300"
    )
    return [
        config_to_toml(node).encode(),
        config_to_toml(observer).encode(),
        b"x = " + b"[" * DEEP,
        b"[node]\nname = 'n'\nrole = 'validator'\n[consensus]\npropose_timeout_ms = 1" + b"0" * 40,
        b'[node]\nname = "\\ud800"\n',
    ]


def last_signed_records() -> list[bytes]:
    harness = _Harness()
    for raw in frames(peer_streams()[0]):
        harness.message(peer_pb2.PeerMessage.FromString(raw))
    harness.fire_timeouts()
    # records without their 4-byte checksum: the target appends a matching one as well
    bodies = [record[:-4] for record in harness.persisted[:4]]
    return [*bodies, *harness.persisted[:2], b"", b"SPLS\x03" + bytes(30), b"SPLS\x02\xff"]


def import_files() -> list[bytes]:
    return [
        b"88/Widget-1,https://example.com/1\n88/Widget-2,https://example.com/2,EMAIL=a@b\n",
        'identifier,url,EMAIL,spark.meta\n88/\u00e9,https://x/1,a@b,"{""k"": 1}"\n'.encode(),
        b"\xef\xbb\xbf# comment\n88/a,,HS_ADMIN=x\n88/A,https://dup\n",
        b'88/"open quote\n',
        b"88/x," + b"y" * 132_000,
        b"\xff\xfe,\n",
    ]


SEEDS = {
    "tx_envelope": tx_envelopes,
    "tx_body": tx_bodies,
    "block": blocks,
    "sync_response": sync_responses,
    "peer_stream": peer_streams,
    "bundle": bundles,
    "handle_identifier": identifiers,
    "handle_prefix": prefixes,
    "gtin": gtins,
    "digital_link": digital_links,
    "digital_link_path": digital_link_paths,
    "bid": bids,
    "oid": oids,
    "genesis": genesis_files,
    "config": config_files,
    "import_csv": import_files,
    "last_signed": last_signed_records,
}


def write_corpus(output: Path) -> dict[str, int]:
    assert set(SEEDS) == set(TARGETS), "every target has seeds"
    counts: dict[str, int] = {}
    for name, make in SEEDS.items():
        folder = output / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for data in make():
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
        counts[name] = len(list(folder.iterdir()))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=CORPUS)
    args = parser.parse_args()
    for name, count in write_corpus(args.output).items():
        print(f"{name:20} {count} seeds")


if __name__ == "__main__":
    main()
