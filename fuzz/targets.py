"""The fuzz targets: one function of bytes per decoder of outside bytes.

A target returns, or raises SparkError (ProofError and every other typed error derive from
it): those are the only outcomes allowed; anything else that escapes is a crash. The
functions live in fuzz/text_targets.py, fuzz/chain_targets.py and fuzz/peer_stream.py and
are imported only when a target is loaded, so that atheris instruments just the packages
the target lists (instrumenting every module of the node takes a loaded machine a minute).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from sparkchain.identifiers.errors import SparkError

IDENTIFIERS = ("sparkchain.identifiers",)
RULES = ("sparkchain.identifiers", "sparkchain.ledger")
BLOCKS = (*RULES, "sparkchain.node.ledger", "sparkchain.node.overlay", "sparkchain.node.sync")


@dataclass(frozen=True)
class Target:
    name: str
    function: str  # "module:function"
    max_len: int  # the longest input the fuzzer makes (libFuzzer -max_len)
    instrument: tuple[str, ...]  # the packages whose coverage guides the fuzzer
    what: str

    def load(self) -> Callable[[bytes], None]:
        module, function = self.function.split(":")
        run: Callable[[bytes], None] = getattr(importlib.import_module(module), function)
        return run


def _t(name: str, function: str, max_len: int, instrument: tuple[str, ...], what: str) -> Target:
    return Target(name, function, max_len, instrument, what)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _t("tx_envelope", "fuzz.chain_targets:tx_envelope", 8192, RULES, "SignedTx, every rule"),
        _t("tx_body", "fuzz.chain_targets:tx_body", 8192, RULES, "TxBody, every rule"),
        _t("block", "fuzz.chain_targets:block", 16384, BLOCKS, "a proposed block, re-executed"),
        _t("sync_response", "fuzz.chain_targets:sync_response", 16384, BLOCKS, "CommittedBlock"),
        _t(
            "peer_stream",
            "fuzz.peer_stream:peer_stream",
            16384,
            ("sparkchain.consensus", "sparkchain.node.peer_handshake", "sparkchain.ledger.blocks"),
            "PeerMessages into the handshake checks and a consensus core",
        ),
        _t("bundle", "fuzz.chain_targets:bundle", 16384, (*RULES, "json"), "proof bundle JSON"),
        _t(
            "handle_identifier",
            "fuzz.text_targets:handle_identifier",
            512,
            IDENTIFIERS,
            "PREFIX/SUFFIX identifiers",
        ),
        _t("handle_prefix", "fuzz.text_targets:handle_prefix", 512, IDENTIFIERS, "prefix, suffix"),
        _t("gtin", "fuzz.text_targets:gs1_text", 64, IDENTIFIERS, "GS1 GTIN-8/12/13/14"),
        _t("digital_link", "fuzz.text_targets:digital_link", 1024, IDENTIFIERS, "Digital Links"),
        _t(
            "digital_link_path",
            "fuzz.text_targets:digital_link_path",
            1024,
            IDENTIFIERS,
            "Digital Link paths (the gateway's resolver)",
        ),
        _t("bid", "fuzz.text_targets:bid_text", 256, IDENTIFIERS, "BIDs and public key text"),
        _t("oid", "fuzz.text_targets:oid_text", 256, IDENTIFIERS, "ISO OIDs"),
        _t(
            "genesis",
            "fuzz.text_targets:genesis_file",
            8192,
            ("sparkchain.ledger.genesis", *IDENTIFIERS, "json"),
            "genesis.json",
        ),
        _t(
            "config",
            "fuzz.text_targets:config_file",
            8192,
            ("sparkchain.node.config", "tomllib"),
            "config.toml",
        ),
        _t(
            "import_csv",
            "fuzz.text_targets:import_csv",
            8192,
            ("sparkchain.cli.import_cmd", "sparkchain.cli.write_cmds", *IDENTIFIERS, "csv"),
            "the CSV file of spark import",
        ),
        _t(
            "last_signed",
            "fuzz.text_targets:last_signed",
            2048,
            ("sparkchain.consensus.lastsigned",),
            "the last-signed record file",
        ),
    )
}


def run_target(run: Callable[[bytes], None], data: bytes) -> None:
    """Run one input; SparkError is an allowed outcome and is swallowed here."""
    with contextlib.suppress(SparkError):
        run(data)
