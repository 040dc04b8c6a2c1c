"""Replay inputs through a target: `python -m fuzz.replay TARGET FILE...`; prints what each
did (ok, the typed error, or the traceback of a crash) and exits 1 if any crashed."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from fuzz.targets import TARGETS
from sparkchain.identifiers.errors import SparkError


def main() -> int:
    name, files = sys.argv[1], sys.argv[2:]
    run = TARGETS[name].load()
    crashed = 0
    for file in files:
        try:
            run(Path(file).read_bytes())
            print(f"{file}: ok")
        except SparkError as error:
            print(f"{file}: {error}"[:300])
        except Exception:
            crashed += 1
            print(f"{file}: CRASH")
            traceback.print_exc()
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
