"""The recorded history of a run: one JSON object per line, an invocation then its completion.

An operation (`Op`) is invoked by one client through one node and completes as
- "ok": acknowledged (a write committed at `height`; a read answered at `height`),
- "fail": refused with a project error `code` (a write that certainly did not happen),
- "info": unknown (a timeout, a lost connection, a node that went away): the write may or
  may not have happened, and the checker accepts either, but not half of it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WRITES = ("register", "update", "transfer")
READS = ("resolve", "status")


@dataclass
class Op:
    id: int
    client: int
    node: str
    f: str  # register | update | transfer | resolve | status
    identifier: str = ""
    payload: str = ""  # the data written at the workload's value index (register, update)
    owner: str = ""  # the new owner (transfer)
    tx_id: str = ""  # hex
    invoked_s: float = 0.0  # monotonic, since the run started
    # completion
    outcome: str = ""  # ok | fail | info ("" while running)
    completed_s: float = 0.0
    height: int = 0
    code: str = ""
    # what a read saw: the record's payload and owner ("" and found False when absent)
    found: bool = False
    seen_payload: str = ""
    seen_owner: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class History:
    """Thread-safe; every event is appended to `path` at once, so a crash keeps it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ops: list[Op] = []
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._file = path.open("w", encoding="utf-8")

    def now_s(self) -> float:
        return time.monotonic() - self._started

    def invoke(self, op: Op) -> Op:
        with self._lock:
            op.id = len(self.ops)
            op.invoked_s = self.now_s()
            self.ops.append(op)
            self._write("invoke", op)
        return op

    def complete(self, op: Op, outcome: str, **fields: Any) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(op, name, value)
            op.outcome = outcome
            op.completed_s = self.now_s()
            self._write(outcome, op)

    def _write(self, event: str, op: Op) -> None:
        self._file.write(json.dumps({"event": event, **asdict(op)}, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        with self._lock:
            for op in self.ops:
                if not op.outcome:  # a client still waiting when the run ended
                    op.outcome = "info"
                    op.completed_s = self.now_s()
                    self._write("info", op)
            self._file.close()


def load_ops(path: Path) -> list[Op]:
    """The operations of a recorded history, each as last recorded."""
    ops: dict[int, Op] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = json.loads(line)
        fields.pop("event")
        ops[fields["id"]] = Op(**fields)
    return [ops[key] for key in sorted(ops)]
