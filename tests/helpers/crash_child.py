"""The process tests/test_crash_safety.py kills: commits blocks until it is SIGKILLed.

    python -m tests.helpers.crash_child LEDGER_DIR REPORT_FILE SEED

Appends `open H` to REPORT_FILE once the ledger is open at height H, then `H` after each
`commit_block` returns, each line fsynced before the next block starts, so the parent
knows a lower bound of what is committed. Block H holds registrations `88/c{H}-{i}`
(single Register txs and, every third block, a RegisterBatch), so the parent can tell
which blocks' state is present.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from tests.helpers.chain import make_test_genesis, value
from tests.helpers.ledger import LedgerChain


def block_identifiers(height: int, seed: int) -> tuple[list[str], list[str]]:
    """(single registrations, batch items) of block `height`: the same in every run."""
    rng = random.Random(seed * 1_000_003 + height)
    singles = [f"88/c{height}-{i}" for i in range(rng.randrange(1, 30))]
    batch = [f"c{height}-b{i}" for i in range(150)] if height % 3 == 0 else []
    return singles, batch


def _report(fd: int, line: str) -> None:
    os.write(fd, line.encode() + b"\n")
    os.fsync(fd)


def main(ledger_dir: Path, report_path: Path, seed: int) -> None:
    chain = LedgerChain(ledger_dir, make_test_genesis(), verify_signatures=False)
    acme = chain.signer("acme", seed=seed + chain.ledger.height)
    fd = os.open(report_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _report(fd, f"open {chain.ledger.height}")
    while True:
        height = chain.ledger.height + 1
        singles, batch = block_identifiers(height, seed)
        now = chain.next_time_ms
        txs = [acme.register(i, [value(1, "URL", f"https://x/{i}")], now_ms=now) for i in singles]
        if batch:
            txs.append(acme.register_batch("88", [(s, []) for s in batch], now_ms=now))
        built = chain.commit(txs)
        assert not built.rejected, built.rejected
        _report(fd, str(height))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
