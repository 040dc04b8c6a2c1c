"""A fault harness over real node processes (issue 14): nemeses (kill -9, pause, partitions
and link faults through a TCP proxy on every peer link, clock skew, a full disk), a workload
of clients that records every invocation and completion, and a checker over that history and
the nodes' chains. `make chaos` runs a seeded schedule (tests/chaos/__main__.py); the short
one runs in `make test` (tests/test_chaos.py)."""
