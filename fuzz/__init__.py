"""Fuzzing of every decoder of outside bytes (issue 14 part 4): `make fuzz`.

One target per decoder (fuzz/targets.py), each a function of bytes whose only allowed
outcomes are a return and a SparkError; a committed seed corpus per target (fuzz/corpus/,
written by `python -m fuzz.seeds`); the driver (`python -m fuzz`) runs every target for its
share of the time budget under atheris (coverage-guided) or, where atheris does not install,
under hypothesis. Inputs that crashed once live in fuzz/regressions/ and are replayed by
tests/test_fuzz_corpus.py with the whole corpus.
"""
