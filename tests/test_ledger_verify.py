"""`spark ledger verify --home DIR`: a sound chain passes; each kind of damage is reported
at the first block it affects, with exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import plyvel
import pytest

from sparkchain.cli.main import main
from sparkchain.identifiers.tx import tx_id
from sparkchain.ledger import blocks
from sparkchain.ledger.genesis import genesis_to_json
from sparkchain.node import schema
from sparkchain.node.home import NodeHome
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import make_test_genesis
from tests.helpers.ledger import certificate, stopped_node_home

REPO = Path(__file__).resolve().parent.parent
BLOCKS = 4


@pytest.fixture
def home(tmp_path: Path) -> NodeHome:
    """A stopped node's home holding a 4-block chain."""
    return stopped_node_home(tmp_path / "node", BLOCKS, registrations_per_block=3)


def _verify(home: NodeHome, *extra: str) -> int:
    return main(["ledger", "verify", "--home", str(home.root), *extra])


def _damage(home: NodeHome, change: Callable[[plyvel.DB], None]) -> None:
    db = plyvel.DB(str(home.ledger_dir))
    try:
        change(db)
    finally:
        db.close()


def test_a_sound_chain_verifies(home: NodeHome, capsys: pytest.CaptureFixture[str]) -> None:
    assert _verify(home) == 0
    out = capsys.readouterr().out
    assert f"ledger verified: {BLOCKS} blocks" in out and "began at the genesis" in out
    assert _verify(home, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "ok": True,
        "height": BLOCKS,
        "checked": BLOCKS,
        "began_at": "genesis",
        "base_height": 0,
        "problem": None,
        "problem_height": None,
    }


def test_the_spark_command_exits_nonzero_on_damage(home: NodeHome) -> None:
    def command() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sparkchain.cli.main",
                "ledger",
                "verify",
                "--home",
                str(home.root),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )

    assert command().returncode == 0
    _damage(home, lambda db: db.delete(schema.certificate_key(3)))
    result = command()
    assert result.returncode == 1
    assert "inconsistency at block 3" in result.stderr
    assert "block 3 has no certificate" in result.stderr


Damage = Callable[[plyvel.DB], None]


def _tamper_block(height: int, change: Callable[[pb.Block, pb.BlockHeader], None]) -> Damage:
    def damage(db: plyvel.DB) -> None:
        block = pb.Block.FromString(db.get(schema.block_key(height)))
        header = pb.BlockHeader.FromString(block.header)
        change(block, header)
        block.header = header.SerializeToString()
        db.put(schema.block_key(height), block.SerializeToString())

    return damage


def _drop_tx(block: pb.Block, header: pb.BlockHeader) -> None:
    del block.txs[0]


def _wrong_state_root(block: pb.Block, header: pb.BlockHeader) -> None:
    header.state_root = b"\x01" * 32


def _weak_certificate(db: plyvel.DB) -> None:
    block = pb.Block.FromString(db.get(schema.block_key(2)))
    weak = certificate(make_test_genesis(), 2, blocks.block_hash(block.header), signers=2)
    db.put(schema.certificate_key(2), weak.SerializeToString())


def _changed_record(db: plyvel.DB) -> None:
    key = schema.record_key("88/V2-1")
    record = pb.Record.FromString(db.get(key))
    record.owner = "did:bid:efSomeoneElse"
    db.put(key, record.SerializeToString())


def _record_from_nowhere(db: plyvel.DB) -> None:
    db.put(
        schema.record_key("88/ZZZ"),
        pb.Record(identifier="88/zzz", key="88/ZZZ").SerializeToString(),
    )


def _lost_tx_index(db: plyvel.DB) -> None:
    block = pb.Block.FromString(db.get(schema.block_key(2)))
    db.delete(schema.tx_key(tx_id(block.txs[1])))


def _lost_record(db: plyvel.DB) -> None:
    db.delete(schema.record_key("88/V4-0"))


DAMAGE: dict[str, tuple[Damage, int, str]] = {
    "tx removed": (_tamper_block(2, _drop_tx), 2, "block 2: INVALID_BLOCK: tx_root: expected"),
    "state root": (
        _tamper_block(3, _wrong_state_root),
        3,
        "block 3: INVALID_BLOCK: state_root: expected",
    ),
    "block missing": (lambda db: db.delete(schema.block_key(2)), 2, "block 2 is missing"),
    "weak certificate": (
        _weak_certificate,
        2,
        "block 2: INVALID_CERTIFICATE: 2 precommits for height 2, need 3 of 4",
    ),
    "changed record": (_changed_record, BLOCKS, "record '88/V2-1': stored bytes differ"),
    "lost history": (
        lambda db: db.delete(schema.history_key("88/V3-2", 3, 2)),
        BLOCKS,
        "history entry '88/V3-2' is missing from the ledger",
    ),
    "lost tx index": (
        _lost_tx_index,
        BLOCKS,
        "tx index",
    ),
    "extra record": (
        _record_from_nowhere,
        BLOCKS,
        "record '88/ZZZ' is stored but no block wrote it",
    ),
    "lost record": (_lost_record, BLOCKS, "record '88/V4-0' is missing from the ledger"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damage_is_reported_at_the_first_block_it_affects(
    home: NodeHome, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    damage, height, message = DAMAGE[name]
    _damage(home, damage)
    assert _verify(home) == 1
    err = capsys.readouterr().err
    assert f"inconsistency at block {height}" in err
    assert message in err


def test_a_ledger_from_another_genesis_is_reported(
    home: NodeHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-genesis.json"
    other.write_text(genesis_to_json(make_test_genesis(chain_id="another")))
    assert _verify(home, "--genesis", str(other)) == 1
    assert "genesis hash: expected" in capsys.readouterr().err


def test_a_home_without_ledger_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = NodeHome(tmp_path / "empty")
    home.root.mkdir()
    home.genesis_path.write_text(genesis_to_json(make_test_genesis()))
    assert _verify(home) == 1
    assert "no ledger here" in capsys.readouterr().err
