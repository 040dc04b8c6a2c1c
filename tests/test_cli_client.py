"""The `spark` write/read/import commands over gRPC against an in-process node with a real
ledger (tests/helpers/api_node.py). The CLI runs in a worker thread, as a user's process
would run beside the node; the node serves on the test's event loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from sparkchain.cli import main as cli_main
from sparkchain.cli.import_cmd import Batch, Importer, ImportReport, Row
from sparkchain.cli.output import EXIT_ERROR, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, printable
from sparkchain.cli.rpc_errors import from_rpc_error
from sparkchain.cli.views import time_text
from sparkchain.cli.write_cmds import ValueSpec, assign_indexes, parse_value_spec, update_values
from sparkchain.identifiers.errors import ERROR_CODE_METADATA_KEY, ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_identifier
from sparkchain.identifiers.tx import value
from sparkchain.ledger.genesis import genesis_to_json, make_genesis
from sparkchain.node import keystore
from sparkchain.node.grpc_errors import status_for
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb
from tests.helpers.api_node import ApiNode
from tests.helpers.chain import bid_of, key
from tests.helpers.ledger import LedgerChain, register_widget


@pytest.fixture
async def node(tmp_path, monkeypatch) -> AsyncIterator[ApiNode]:
    home = tmp_path / "home"
    monkeypatch.setenv("SPARK_HOME", str(home))
    keystore.write_key_file(keystore.key_path("dev", home), key("acme"))
    keystore.write_key_file(keystore.key_path("mallory", home), key("mallory"))
    started = await ApiNode(tmp_path / "ledger").start()
    monkeypatch.setenv("SPARK_NODE", started.address)
    yield started
    await started.stop()


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    async def __call__(self, *argv: str) -> SimpleNamespace:
        self.capsys.readouterr()
        code = await asyncio.to_thread(cli_main.main, list(argv))
        captured = self.capsys.readouterr()
        return SimpleNamespace(code=code, out=captured.out, err=captured.err)

    async def json(self, *argv: str) -> object:
        result = await self(*argv, "--json")
        assert result.code == EXIT_OK, result.err
        return json.loads(result.out)


@pytest.fixture
def spark(capsys) -> Cli:
    return Cli(capsys)


# ---- writes and reads ----


async def test_register_then_resolve_shows_the_values(node, spark):
    done = await spark("register", "88/SN-1", "--url", "https://a.cn/1", "--value", "EMAIL=q@a.cn")
    assert done.code == EXIT_OK, done.err
    assert done.out.startswith("registered 88/SN-1 at height 1 (tx ")
    shown = await spark.json("resolve", "88/sn-1")
    assert shown["identifier"] == "88/SN-1" and shown["owner"] == bid_of("acme")
    assert [(v["index"], v["type"], v["data"]) for v in shown["values"]] == [
        (1, "URL", "https://a.cn/1"),
        (2, "EMAIL", "q@a.cn"),
    ]
    text = await spark("resolve", "88/SN-1", "--type", "EMAIL")
    assert "q@a.cn" in text.out and "https://a.cn/1" not in text.out


async def test_register_with_meta_and_no_wait(node, spark, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text('{"sku": "X", "batch": 7}')
    result = await spark("register", "88/M", "--meta", str(meta), "--no-wait", "--json")
    assert result.code == EXIT_OK, result.err
    answer = json.loads(result.out)
    assert answer["committed"] is False and answer["height"] is None
    while node.ledger.height < 1:  # the stand-in consensus commits it soon
        await asyncio.sleep(0.005)
    shown = await spark.json("resolve", "88/M", "--index", "2000")
    assert shown["values"] == [
        {
            "index": 2000,
            "type": "spark.meta",
            "data": '{"batch":7,"sku":"X"}',
            "ttl": 86400,
            "timestamp_ms": shown["values"][0]["timestamp_ms"],
        }
    ]


async def test_update_transfer_revoke_and_history(node, spark):
    assert (await spark("register", "88/U", "--url", "https://old", "--value", "A=1")).code == 0
    updated = await spark("update", "88/U", "--url", "https://new", "--value", "B=2")
    assert updated.code == EXIT_OK, updated.err
    shown = await spark.json("resolve", "88/U")
    assert [(v["index"], v["data"]) for v in shown["values"]] == [
        (1, "https://new"),
        (2, "1"),
        (3, "2"),
    ]
    removed = await spark("update", "88/U", "--remove-index", "2")
    assert removed.code == EXIT_OK, removed.err
    revoked = await spark("revoke", "88/U", "--reason", "recalled")
    assert revoked.code == EXIT_OK, revoked.err
    moved = await spark("transfer", "88/U", bid_of("bob"))
    assert moved.code == EXIT_ERROR and "REVOKED" in moved.err
    history = await spark.json("history", "88/U")
    assert [e["operation"] for e in history] == ["register", "update", "update", "revoke"]
    final = await spark.json("resolve", "88/U")
    assert final["status"] == "REVOKED" and final["revoke_reason"] == "recalled"


async def test_transfer_gives_the_record_to_a_new_owner(node, spark):
    assert (await spark("register", "88/T")).code == EXIT_OK
    assert (await spark("transfer", "88/T", bid_of("bob"))).code == EXIT_OK
    assert (await spark.json("resolve", "88/T"))["owner"] == bid_of("bob")


async def test_prefix_create_show_and_registrars(node, spark):
    created = await spark("prefix", "create", "88.608")
    assert created.code == EXIT_OK and "created prefix 88.608 at height" in created.out
    added = await spark("prefix", "registrars", "88.608", "--add", bid_of("mallory"))
    assert added.code == EXIT_OK, added.err
    shown = await spark.json("prefix", "show", "88.608")
    assert shown["owner"] == bid_of("acme") and shown["registrars"] == [bid_of("mallory")]
    as_registrar = await spark("register", "88.608/R1", "--key", "mallory")
    assert as_registrar.code == EXIT_OK, as_registrar.err
    parent = await spark("prefix", "show", "88")
    assert "children:   88.608" in parent.out


async def test_list_pages_and_all(node, spark):
    batch_rows = "\n".join(f"88/L{i:03},https://l/{i}" for i in range(25))
    csv_file = Path(node.chain.path).parent / "list.csv"
    csv_file.write_text(batch_rows + "\n")
    assert (await spark("import", str(csv_file), "--no-progress")).code == EXIT_OK
    first = await spark.json("list", "88", "--page-size", "10")
    assert len(first["records"]) == 10 and first["next_page_token"]
    everything = await spark.json("list", "88", "--page-size", "10", "--all")
    assert [r["identifier"] for r in everything["records"]] == [f"88/L{i:03}" for i in range(25)]
    text = await spark("list", "88", "--page-size", "7", "--all")
    assert len(text.out.splitlines()) == 25 and "88/L024  https://l/24" in text.out


async def test_status_shows_chain_height_root_role_and_peers(node, spark):
    await spark("register", "88/S")
    status = await spark.json("status")
    assert status["chain_id"] == node.genesis.chain_id and status["height"] == 1
    assert status["state_root"] == node.ledger.state_root.hex()
    assert status["role"] == "validator" and status["peers"][0]["name"] == "node2"
    text = await spark("status")
    assert "peers:      1 of 1 connected" in text.out


# ---- verification ----


async def test_resolve_verify_pins_the_genesis_and_says_verified(node, spark, tmp_path):
    await spark("register", "88/V", "--url", "https://v")
    first = await spark("resolve", "88/V", "--verify")
    assert first.code == EXIT_OK, first.err
    assert first.out.rstrip().endswith("verified at height 1") and "pinned" in first.err
    pin = tmp_path / "home" / "pinned" / f"{node.genesis.chain_id}.genesis.json"
    assert pin.exists()
    again = await spark("resolve", "88/V", "--verify", "--json")
    assert json.loads(again.out)["verified"] is True and "pinned" not in again.err
    absent = await spark("resolve", "88/NONE", "--verify")
    assert absent.code == EXIT_ERROR
    assert "absence verified at height 1" in absent.err


async def test_resolve_at_a_kept_height_verifies_and_a_pruned_one_is_refused(
    tmp_path, monkeypatch, spark
):
    home = tmp_path / "home"
    monkeypatch.setenv("SPARK_HOME", str(home))
    keystore.write_key_file(keystore.key_path("dev", home), key("acme"))
    pruning = await ApiNode(tmp_path / "pruning", keep_heights=2).start()
    monkeypatch.setenv("SPARK_NODE", pruning.address)
    try:
        await spark("register", "88/H", "--url", "https://v1")  # 1
        for n in (2, 3, 4):
            await spark("update", "88/H", "--value", f"1:URL=https://v{n}")
        kept = await spark("resolve", "88/H", "--verify", "--height", "3")
        assert kept.code == EXIT_OK, kept.err
        assert "https://v3" in kept.out and kept.out.rstrip().endswith("verified at height 3")
        plain = await spark("resolve", "88/H", "--height", "1", "--json")
        assert json.loads(plain.out)["height"] == 1 and "https://v1" in plain.out
        pruned = await spark("resolve", "88/H", "--verify", "--height", "2")
        assert pruned.code == EXIT_ERROR
        assert pruned.err.startswith("error: HEIGHT_PRUNED: the state at height 2 is pruned")
        assert "from height 3 on" in pruned.err
    finally:
        await pruning.stop()


async def test_resolve_verify_fails_loudly_on_another_chains_genesis(node, spark, tmp_path):
    await spark("register", "88/V")
    impostor = make_genesis(
        node.genesis.chain_id,
        node.genesis.genesis_time_ms,
        [("evil", key("evil").public_key)],
    )
    pin = tmp_path / "home" / "pinned" / f"{node.genesis.chain_id}.genesis.json"
    pin.parent.mkdir(parents=True)
    pin.write_text(genesis_to_json(impostor))
    refused = await spark("resolve", "88/V", "--verify")
    assert refused.code == EXIT_ERROR and "INVALID_GENESIS" in refused.err
    assert "different chain" in refused.err
    given = tmp_path / "impostor.json"
    given.write_text(genesis_to_json(impostor))
    failed = await spark("resolve", "88/V", "--genesis", str(given))
    assert failed.code == EXIT_ERROR
    assert "INVALID_PROOF" in failed.err and "verification FAILED" in failed.err


async def test_a_node_saying_not_found_without_a_proof_is_not_a_verified_absence(
    node: ApiNode, spark: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node controls its error's code and text: it can word it as the CLI words a
    verified absence. With --verify, only a checked proof may say "not registered"."""
    assert (await spark("register", "88/V", "--url", "https://v")).code == EXIT_OK

    def lie(identifier: str, height: int = 0) -> object:
        raise SparkError(
            ErrorCode.NOT_FOUND, f"{identifier} is not registered (absence verified at height 1)"
        )

    monkeypatch.setattr(node.ledger, "resolve_with_proof", lie)
    result = await spark("resolve", "88/V", "--verify")
    assert result.code != EXIT_OK
    assert "error: INVALID_PROOF: verification FAILED" in result.err, result.err
    assert "without a proof" in result.err


async def test_an_old_genuine_proof_shows_its_block_time_and_max_age_refuses_it(
    node: ApiNode, spark: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A lying node answers with a genuine proof of the same chain, one block old, a year
    ago (block times near the genesis time)."""
    old = LedgerChain(tmp_path / "old", node.genesis)
    try:
        register_widget(old)
        answer = old.ledger.resolve_with_proof("88/Widget-1")
        block_time = old.ledger.last_block_time_ms
    finally:
        old.close()
    monkeypatch.setattr(node.ledger, "resolve_with_proof", lambda _identifier, _height=0: answer)
    shown = await spark("resolve", "88/widget-1", "--verify")
    assert shown.code == EXIT_OK, shown.err
    assert time_text(block_time) in shown.out and "'sparkchain-test'" in shown.out
    assert shown.out.rstrip().endswith("verified at height 1")
    as_json = await spark("resolve", "88/widget-1", "--verify", "--json")
    assert json.loads(as_json.out)["verified_time_ms"] == block_time
    refused = await spark("resolve", "88/widget-1", "--verify", "--max-age", "3600")
    assert refused.code != EXIT_OK
    assert "INVALID_PROOF" in refused.err and "older than --max-age" in refused.err


# ---- text that could pass for other text (finding 12) ----


async def test_writes_sign_the_nfc_form_of_an_identifier_and_say_so(node, spark):
    decomposed, composed = "88/Cafe\u0301", "88/Caf\u00e9"
    done = await spark("register", decomposed, "--url", "https://cafe")
    assert done.code == EXIT_OK, done.err
    assert done.out.startswith(f"registered {composed} at height")
    note = done.err.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("note: ") and "NFC" in note[0], done.err
    assert (await spark.json("resolve", composed))["identifier"] == composed
    revoked = await spark("revoke", decomposed, "--reason", "typo")
    assert revoked.code == EXIT_OK and "NFC" in revoked.err, revoked.err
    quiet = await spark("register", "88/plain")
    assert quiet.code == EXIT_OK and quiet.err == ""


async def test_text_output_escapes_control_characters_so_data_cannot_forge_rows(node, spark):
    forged = "ok\nidentifier: 88/FORGED\nstatus:     ACTIVE"
    done = await spark(
        "register",
        "88/N",
        "--url",
        "https://n/\r\n88/FAKE  https://evil",
        "--value",
        f"NOTE={forged}",
    )
    assert done.code == EXIT_OK, done.err
    assert (await spark("revoke", "88/N", "--reason", "a\nowner:      mallory")).code == EXIT_OK
    shown = await spark("resolve", "88/N")
    listed = await spark("list", "88")
    for output in (shown.out, listed.out):
        lines = output.splitlines()
        assert not any(
            line.startswith(("identifier: 88/FORGED", "owner:      mallory")) for line in lines
        )
        assert not any(line.startswith("88/FAKE") for line in lines)
    assert "ok\\nidentifier: 88/FORGED\\nstatus:     ACTIVE" in shown.out
    assert "reason:     a\\nowner:      mallory" in shown.out
    assert "https://n/\\r\\n88/FAKE  https://evil" in listed.out
    as_json = await spark.json("resolve", "88/N")  # JSON escapes by itself, and keeps the data
    assert [v["data"] for v in as_json["values"] if v["type"] == "NOTE"] == [forged]


# ---- errors a user can cause ----


async def test_user_errors_have_codes_and_one_line_messages(node, spark, tmp_path):
    await spark("register", "88/DUP")
    cases = [
        (("resolve", "88/UNKNOWN"), EXIT_ERROR, "NOT_FOUND"),
        (("register", "88/X", "--key", "mallory"), EXIT_ERROR, "UNAUTHORIZED"),
        (("register", "88/DUP"), EXIT_ERROR, "EXISTS"),
        (("register", "no-slash"), EXIT_ERROR, "INVALID_IDENTIFIER"),
        (("register", "88/BIG", "--value", "D=" + "x" * 17000), EXIT_ERROR, "TOO_LARGE"),
        (("register", "88/K", "--key", "nobody"), EXIT_ERROR, "NOT_FOUND"),
        (("register", "88/Y", "--value", "novalue"), EXIT_ERROR, "INVALID_VALUE"),
        (("list", "88", "--page-size", "0"), EXIT_USAGE, "INVALID_ARGUMENT"),
    ]
    for argv, code, error_code in cases:
        result = await spark(*argv)
        assert result.code == code, (argv, result.err)
        assert result.err.startswith(f"error: {error_code}: "), (argv, result.err)
        assert len(result.err.strip().splitlines()) == 1


async def test_unreachable_node_is_unavailable_naming_the_address(node, spark):
    result = await spark("resolve", "88/A", "--node", "127.0.0.1:1")
    assert result.code == EXIT_UNAVAILABLE
    assert result.err.startswith("error: UNAVAILABLE: cannot reach node at 127.0.0.1:1")


async def test_missing_dev_key_says_how_to_get_one(node, spark, monkeypatch, tmp_path):
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "empty"))
    result = await spark("register", "88/A")
    assert result.code == EXIT_ERROR and "spark node start" in result.err


# ---- import ----


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


async def test_import_registers_good_rows_and_reports_bad_ones_by_line(node, spark, tmp_path):
    rows = ["# product identifiers"]
    rows += [f"88/P{i:05},https://p/{i},BATCH=b{i % 3}" for i in range(10_000)]
    rows[10] = "88..1/A,https://x"  # line 11: empty prefix segment
    rows[20] = "77/P99999,https://x"  # line 21: prefix 77 does not exist
    rows[30] = "88/P00005,https://again"  # line 31: repeats line 7
    rows[40] = "88/P00039,https://x,EMPTYVALUE"  # line 41: not TYPE=DATA
    csv_file = write_csv(tmp_path / "ids.csv", rows)
    result = await spark("import", str(csv_file), "--no-progress", "--json")
    assert result.code == EXIT_ERROR, result.err
    report = json.loads(result.out)
    assert report["rows"] == 10_000 and report["failed"] == 4
    assert report["registered"] == 9996 and report["already_registered"] == 0
    failures = {f["line"]: f["code"] for f in report["failures"]}
    assert failures == {
        11: "INVALID_IDENTIFIER",
        21: "NOT_FOUND",
        31: "EXISTS",
        41: "INVALID_VALUE",
    }
    listed = await spark.json("list", "88", "--all", "--page-size", "1000")
    assert len(listed["records"]) == 9996  # each good row registered exactly once
    shown = await spark.json("resolve", "88/P00002")
    assert [(v["type"], v["data"]) for v in shown["values"]] == [
        ("URL", "https://p/2"),
        ("BATCH", "b2"),
    ]

    again = await spark("import", str(csv_file), "--no-progress", "--json")
    report = json.loads(again.out)
    assert report["registered"] == 0 and report["already_registered"] == 9996
    assert report["failed"] == 4


async def test_import_after_an_interruption_registers_only_what_is_missing(node, spark, tmp_path):
    header = "identifier,url,1000:GTIN,OWNER-NOTE"
    rows = [f"88/I{i:03},https://i/{i},0950600013435{i % 10},note {i}" for i in range(300)]
    partial = write_csv(tmp_path / "partial.csv", [header, *rows[100:150], *rows[220:230]])
    assert (await spark("import", str(partial), "--no-progress")).code == EXIT_OK
    height_before = node.ledger.height
    full = write_csv(tmp_path / "full.csv", [header, *rows])
    result = await spark("import", str(full), "--no-progress", "--batch-size", "100")
    assert result.code == EXIT_OK, result.out + result.err
    assert "300 rows: 240 registered, 60 already registered, 0 failed" in result.out
    assert node.ledger.height > height_before
    shown = await spark.json("resolve", "88/I007")
    assert [(v["index"], v["type"]) for v in shown["values"]] == [
        (1, "URL"),
        (2, "OWNER-NOTE"),
        (1000, "GTIN"),
    ]
    listed = await spark.json("list", "88", "--all", "--page-size", "1000")
    assert len(listed["records"]) == 300


async def test_import_isolates_a_row_the_ledger_refuses(node, spark, tmp_path):
    rows = [f"88/Z{i},https://z/{i}" for i in range(50)]
    # each value is within limits, so only the ledger sees the record is over 64 KiB
    rows[17] = "88/Z17,https://z," + ",".join(f"T{j}={'v' * 15000}" for j in range(5))
    rows[33] = "88/Z33,https://z," + ",".join(f"T{j}=v" for j in range(70))  # > 64 values
    csv_file = write_csv(tmp_path / "z.csv", rows)
    result = await spark("import", str(csv_file), "--no-progress", "--window", "2")
    assert result.code == EXIT_ERROR
    assert "line 18: 88/Z17: TOO_LARGE: record 88/Z17 would be" in result.out
    assert "line 34: 88/Z33: TOO_LARGE" in result.out
    assert "50 rows: 48 registered, 0 already registered, 2 failed" in result.out


async def test_import_to_an_unreachable_node_stops_with_unavailable(node, spark, tmp_path):
    csv_file = write_csv(tmp_path / "u.csv", ["88/A,https://a"])
    result = await spark("import", str(csv_file), "--no-progress", "--node", "127.0.0.1:1")
    assert result.code == EXIT_UNAVAILABLE
    assert "cannot reach node at 127.0.0.1:1" in result.err


# ---- pieces ----


def test_value_specs_take_free_indexes_after_chosen_ones():
    specs = [parse_value_spec("EMAIL=a@b"), parse_value_spec("1:URL=https://x")]
    specs.append(parse_value_spec("NOTE=a=b"))
    values = assign_indexes(specs, [b"{}"])
    assert [(v.index, v.type, v.data) for v in values] == [
        (1, "URL", b"https://x"),
        (2, "EMAIL", b"a@b"),
        (3, "NOTE", b"a=b"),
        (2000, "spark.meta", b"{}"),
    ]
    with pytest.raises(SparkError) as caught:
        assign_indexes([ValueSpec(4, "A", b""), ValueSpec(4, "B", b"")], [])
    assert caught.value.code is ErrorCode.INVALID_VALUE


def test_update_replaces_values_of_the_same_type():
    record = pb.Record(
        values=[value(1, "URL", "old"), value(5, "A", "x"), value(2000, "spark.meta", "{}")]
    )
    upsert = update_values(
        record, [ValueSpec(None, "URL", b"new"), ValueSpec(None, "B", b"y")], [b'{"a":1}']
    )
    assert [(v.index, v.type, v.data) for v in upsert] == [
        (1, "URL", b"new"),
        (2, "B", b"y"),
        (2000, "spark.meta", b'{"a":1}'),
    ]


class FakeRpcError(grpc.RpcError):
    def __init__(self, status: grpc.StatusCode, details: str, metadata=()) -> None:
        self._status, self._details, self._metadata = status, details, metadata

    def code(self) -> grpc.StatusCode:
        return self._status

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._metadata


def test_error_codes_map_to_grpc_status_and_back():
    assert status_for(ErrorCode.INVALID_IDENTIFIER) is grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(ErrorCode.UNAUTHORIZED) is grpc.StatusCode.PERMISSION_DENIED
    assert status_for(ErrorCode.MEMPOOL_FULL) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_for(ErrorCode.TIMEOUT) is grpc.StatusCode.DEADLINE_EXCEEDED
    with_metadata = FakeRpcError(
        grpc.StatusCode.ALREADY_EXISTS,
        "EXISTS: identifier 88/A exists",
        ((ERROR_CODE_METADATA_KEY, "EXISTS"),),
    )
    error = from_rpc_error(with_metadata, "h:1")
    assert (error.code, error.message) == (ErrorCode.EXISTS, "identifier 88/A exists")
    from_details = from_rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND, "NOT_FOUND: gone"), "h:1")
    assert (from_details.code, from_details.message) == (ErrorCode.NOT_FOUND, "gone")
    unreachable = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "refused"), "h:1")
    assert unreachable.code is ErrorCode.UNAVAILABLE
    assert unreachable.message.startswith("cannot reach node at h:1")


def test_import_fails_the_row_at_the_item_index_the_node_reports() -> None:
    rows = [Row(i + 2, parse_identifier(f"88/R{i}"), ()) for i in range(6)]
    report = ImportReport(rows=len(rows))
    importer = Importer(None, None, "", 1, report, lambda _: None)  # type: ignore[arg-type]
    refusal = api_pb2.SubmitResponse(
        error_code="INVALID_VALUE",
        error_message="register_batch.items[4]: the message text need not say where",
        error_item_index=4,
    )
    importer._settle(Batch(rows), refusal)
    assert [(f.line, f.message) for f in report.failures] == [
        (6, "the message text need not say where")
    ]
    # the other five rows go again together: found from the field, without halving
    (again,) = importer._work
    assert again.rows == rows[:4] + rows[5:]


def test_import_without_an_item_index_halves_the_batch_to_find_the_row() -> None:
    rows = [Row(i + 2, parse_identifier(f"88/R{i}"), ()) for i in range(6)]
    report = ImportReport(rows=len(rows))
    importer = Importer(None, None, "", 1, report, lambda _: None)  # type: ignore[arg-type]
    refusal = api_pb2.SubmitResponse(
        error_code="INVALID_VALUE", error_message="register_batch.items[4]: not a field"
    )
    importer._settle(Batch(rows), refusal)
    assert report.failures == []
    assert [batch.rows for batch in importer._work] == [rows[:3], rows[3:]]


def test_printable_escapes_controls_and_format_characters_and_nothing_else():
    assert printable("88.1/A0\u202egpj.exe") == "88.1/A0\\u202egpj.exe"
    assert printable("a\nb\r\tc\x00\u200b\u2028") == "a\\nb\\r\\tc\\u0000\\u200b\\u2028"
    assert printable("\U000e0041") == "\\U000e0041"  # a tag character (Cf) beyond the BMP
    kept = "Café 中文\u3000标识 \\n"  # letters, ideographic space, a backslash as typed
    assert printable(kept) == kept


async def test_import_signs_the_nfc_form_and_says_how_many_it_changed(node, spark, tmp_path):
    csv_file = write_csv(tmp_path / "nfd.csv", ["88/Cafe\u0301,https://c", "88/plain,https://p"])
    result = await spark("import", str(csv_file), "--no-progress")
    assert result.code == EXIT_OK, result.err
    assert "note: 1 identifier normalised to Unicode NFC before signing" in result.err
    assert (await spark.json("resolve", "88/Caf\u00e9"))["identifier"] == "88/Caf\u00e9"
