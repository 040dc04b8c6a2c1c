"""One target under atheris (libFuzzer): `python -m fuzz.run_one TARGET [libFuzzer flags]
[corpus folders]`. `python -m fuzz` runs this for every target with the time budget."""

from __future__ import annotations

import pkgutil
import sys

import atheris  # type: ignore[import-untyped]

import sparkchain
from fuzz.targets import TARGETS, run_target


def uninstrumented(instrument: tuple[str, ...]) -> list[str]:
    """Every sparkchain module outside the packages and modules in `instrument`."""
    names = [module.name for module in pkgutil.walk_packages(sparkchain.__path__, "sparkchain.")]
    return [
        name
        for name in names
        if not any(name == kept or name.startswith(f"{kept}.") for kept in instrument)
    ]


def main() -> None:
    name, flags = sys.argv[1], sys.argv[2:]
    target = TARGETS[name]
    # coverage feedback from the modules the target decodes with; instrumenting all of
    # sparkchain (atheris's `include` takes only top-level packages) costs a minute
    with atheris.instrument_imports(
        include=[name.split(".")[0] for name in target.instrument],
        exclude=uninstrumented(target.instrument),
    ):
        run = target.load()
    # the first input builds what the target runs against (fuzz/world.py), so that its
    # cost counts against no input's timeout
    run_target(run, b"")

    def test_one_input(data: bytes) -> None:
        run_target(run, data)

    atheris.Setup([sys.argv[0], *flags], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
