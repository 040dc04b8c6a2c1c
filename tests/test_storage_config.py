"""config.toml's [storage] bounds reach the ledger (issue 15): LevelDB's block cache and the
state tree's cache of its upper levels, and a bound changes memory, never an answer."""

from __future__ import annotations

from pathlib import Path

from sparkchain.ledger import smt
from sparkchain.ledger.proof import verify_resolution
from sparkchain.node.config import StorageConfig
from sparkchain.node.runtime import open_ledger
from tests.helpers.chain import make_test_genesis
from tests.helpers.ledger import stopped_node_home

BLOCKS = 4
PER_BLOCK = 30


def test_the_tree_cache_bound_holds_and_changes_no_root_or_proof(tmp_path: Path) -> None:
    home = stopped_node_home(tmp_path / "home", BLOCKS, PER_BLOCK)
    genesis = make_test_genesis()
    ledger, _ = open_ledger(home, genesis)  # the defaults
    try:
        default_nodes = len(ledger._tree_cache)
        root = ledger.state_root
        _, proof = ledger.resolve_with_proof("88/v2-7")
    finally:
        ledger.close()
    assert default_nodes > 3  # so the bound below is a bound, not a no-op

    small, _ = open_ledger(home, genesis, StorageConfig(block_cache_mb=1, tree_cache_nodes=3))
    try:
        assert small._tree_cache.max_nodes == 3
        assert len(small._tree_cache) <= 3
        assert small.state_root == root
        record, bounded = small.resolve_with_proof("88/v2-7")
        assert record is not None and record.key == "88/V2-7"
        assert bounded.state_proof == proof.state_proof
        verify_resolution(small.validators, genesis.chain_id, "88/v2-7", bounded)
        assert small.resolve("88/v4-29").identifier == "88/v4-29"
        assert len(small._tree_cache) <= 3
    finally:
        small.close()


def test_the_defaults_are_the_measured_ones() -> None:
    storage = StorageConfig()
    assert storage.block_cache_bytes == 32 * 1024 * 1024
    assert storage.tree_cache_nodes == smt.CACHE_MAX_NODES == 80_000
