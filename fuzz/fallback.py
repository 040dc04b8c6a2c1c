"""The fuzz engine where atheris does not install: hypothesis, from the same seeds.

Not coverage-guided: inputs are random bytes, or seeds with a few random edits (flip,
insert, delete, duplicate a run of bytes), in rounds of examples until the time is up.
"""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fuzz.targets import Target, run_target

EXAMPLES_PER_ROUND = 200


def mutate(seed: bytes, rnd: random.Random, max_len: int) -> bytes:
    data = bytearray(seed)
    for _ in range(rnd.randint(1, 8)):
        where = rnd.randint(0, len(data))
        action = rnd.randrange(4)
        if action == 0 and data:
            data[min(where, len(data) - 1)] ^= 1 << rnd.randrange(8)
        elif action == 1:
            data[where:where] = bytes([rnd.randrange(256)])
        elif action == 2:
            del data[where : where + rnd.randint(1, 8)]
        else:
            data[where:where] = data[where : where + rnd.randint(1, 64)]
    return bytes(data[:max_len])


def fuzz_with_hypothesis(
    target: Target, seeds: list[bytes], seconds: float
) -> tuple[int, bytes | None, str]:
    """(executions, the crashing input or None, what it raised)."""
    run = target.load()
    executions = 0
    crashing: list[tuple[bytes, str]] = []
    inputs = st.binary(max_size=target.max_len)
    if seeds:
        edited = st.builds(
            mutate,
            st.sampled_from(seeds),
            st.randoms(use_true_random=False),
            st.just(target.max_len),
        )
        inputs = st.one_of(st.sampled_from(seeds), edited, inputs)

    @settings(
        max_examples=EXAMPLES_PER_ROUND,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def one_round(data: bytes) -> None:
        nonlocal executions
        executions += 1
        try:
            run_target(run, data)
        except Exception as exc:
            crashing.append((data, repr(exc)))
            raise

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            one_round()
        except Exception:
            data, error = crashing[0]
            return executions, data, error
    return executions, None, ""
