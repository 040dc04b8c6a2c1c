"""`spark import FILE.csv`: bulk registration through RegisterBatch over SubmitStream.

CSV layout, either
  * no header: `identifier,url[,TYPE=DATA ...]` (a cell may also be `INDEX:TYPE=DATA`), or
  * a header row whose first cell is `identifier`: the column `url` holds URLs and every
    other column is named `TYPE` or `INDEX:TYPE`, its cells holding DATA (empty: no value).
Blank lines and lines starting with `#` are skipped. Values without an index take the next
free one from 1, URL first.

Rows are checked locally, grouped by prefix into RegisterBatch txs of at most 1000 items and
sent on one stream, several batches in flight, each waiting for its commit. A batch is
all-or-nothing, so when one is refused:
  * EXISTS: its identifiers are resolved; the registered ones are skipped as "already
    registered" (this is what makes re-running after an interruption register only what is
    missing) and the rest are sent again;
  * an error naming one item (its `item_index` field): that row fails, the rest go
    again; an item error without a position: the batch is halved until the row is found;
  * an error about the whole batch (prefix missing, not authorised, ...): every row fails;
  * MEMPOOL_FULL or TIMEOUT: sent again after a pause (a timed-out batch that committed
    after all is then found by the EXISTS path).
Exit code 0 when every row is registered or already was, 1 when a row failed.
"""

from __future__ import annotations

import argparse
import csv
import queue
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from sparkchain.cli.client import (
    NodeClient,
    add_key_arguments,
    add_node_argument,
    load_signing_key,
    now_ms,
)
from sparkchain.cli.output import (
    EXIT_ERROR,
    EXIT_OK,
    add_json_argument,
    emit_json,
    emit_text,
    exit_code_for,
    note,
)
from sparkchain.cli.write_cmds import (
    ValueSpec,
    assign_indexes,
    identifier_in_nfc,
    parse_value_spec,
    url_spec,
)
from sparkchain.identifiers.bid import parse_bid
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import Identifier
from sparkchain.identifiers.limits import MAX_BATCH_ITEMS, MAX_TX_BYTES
from sparkchain.identifiers.tx import TxBuilder
from sparkchain.ledger.records import check_values
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb

DEFAULT_WINDOW_BATCHES = 8
BATCH_BUDGET_BYTES = MAX_TX_BYTES // 2  # room for the envelope and the estimate's slack
MAX_RETRIES = 30
RETRY_PAUSE_S = 0.5
COMMIT_WAIT_MS = 60_000
# refusals that concern the whole batch, not one of its rows
_BATCH_WIDE = frozenset(
    {
        ErrorCode.NOT_FOUND,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.INVALID_PREFIX,
        ErrorCode.INVALID_BID,
        ErrorCode.WRONG_CHAIN,
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.EXPIRED,
    }
)
_RETRY = frozenset({ErrorCode.MEMPOOL_FULL, ErrorCode.TIMEOUT, ErrorCode.DUPLICATE_TX})


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = commands.add_parser(
        "import",
        help="register identifiers from a CSV file (identifier,url[,TYPE=DATA...])",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("--owner", metavar="BID", help="owner of every record (default: signer)")
    imp.add_argument(
        "--batch-size", type=int, default=MAX_BATCH_ITEMS, metavar="N", help="rows per tx"
    )
    imp.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW_BATCHES, metavar="N", help="txs in flight"
    )
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_node_argument(imp)
    add_key_arguments(imp)
    add_json_argument(imp)
    imp.set_defaults(handler=_import)


# ---- reading the file ----


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    identifier: Identifier
    values: tuple[pb.Value, ...]


@dataclass(frozen=True, slots=True)
class RowFailure:
    line: int
    identifier: str
    code: str
    message: str

    def text(self) -> str:
        where = f" {self.identifier}:" if self.identifier else ""
        return f"line {self.line}:{where} {self.code}: {self.message}"


@dataclass
class ParsedFile:
    rows: list[Row] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    normalised: int = 0  # identifiers written in another form than Unicode NFC


def _cell_specs(header: list[str] | None, cells: list[str]) -> list[ValueSpec]:
    specs: list[ValueSpec] = []
    if header is None:
        if len(cells) > 1 and cells[1].strip():
            specs.append(url_spec(cells[1].strip()))
        specs.extend(parse_value_spec(cell, "cell") for cell in cells[2:] if cell.strip())
        return specs
    if len(cells) > len(header):
        raise SparkError(
            ErrorCode.INVALID_VALUE, f"{len(cells)} cells but the header names {len(header)}"
        )
    for name, cell in zip(header[1:], cells[1:], strict=False):
        if not cell:
            continue
        if name.lower() == "url":
            specs.append(url_spec(cell.strip()))
        else:
            specs.append(parse_value_spec(f"{name}={cell}", f"column {name!r}:"))
    return specs


def read_rows(path: Path) -> ParsedFile:
    """Every usable row, and a failure for each row that cannot be registered as written."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, f"{path}: cannot read: {exc.strerror or exc}"
        ) from None
    parsed = ParsedFile()
    first_line: dict[str, int] = {}
    header: list[str] | None = None
    with handle:
        reader = csv.reader(handle)
        try:
            for cells in reader:
                line = reader.line_num
                if not cells or not any(c.strip() for c in cells):
                    continue
                first = cells[0].strip()
                if first.startswith("#"):
                    continue
                if header is None and not parsed.rows and first.lower() == "identifier":
                    header = [c.strip() for c in cells]
                    continue
                _read_row(parsed, line, first, header, cells, first_line)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT, f"{path}: line {reader.line_num + 1}: {exc}"
            ) from None
    return parsed


def _read_row(
    parsed: ParsedFile,
    line: int,
    text: str,
    header: list[str] | None,
    cells: list[str],
    first_line: dict[str, int],
) -> None:
    try:
        identifier, normalised = identifier_in_nfc(text)
        values = assign_indexes(_cell_specs(header, cells), [])
        check_values(values, "row")
    except SparkError as error:
        parsed.failures.append(RowFailure(line, text, str(error.code), error.message))
        return
    earlier = first_line.get(identifier.key)
    if earlier is not None:
        parsed.failures.append(
            RowFailure(
                line, text, str(ErrorCode.EXISTS), f"repeats the identifier of line {earlier}"
            )
        )
        return
    first_line[identifier.key] = line
    parsed.normalised += normalised
    parsed.rows.append(Row(line, identifier, tuple(values)))


def make_batches(rows: list[Row], batch_size: int) -> list[list[Row]]:
    """Rows grouped by prefix (file order within a prefix), cut by count and bytes."""
    by_prefix: dict[str, list[Row]] = {}
    for row in rows:
        by_prefix.setdefault(row.identifier.prefix.key, []).append(row)
    batches: list[list[Row]] = []
    for group in by_prefix.values():
        batch: list[Row] = []
        size = 0
        for row in group:
            row_size = len(row.identifier.suffix) + sum(v.ByteSize() + 8 for v in row.values) + 8
            if batch and (len(batch) >= batch_size or size + row_size > BATCH_BUDGET_BYTES):
                batches.append(batch)
                batch, size = [], 0
            batch.append(row)
            size += row_size
        if batch:
            batches.append(batch)
    return batches


# ---- sending ----


@dataclass
class Batch:
    rows: list[Row]
    attempts: int = 0


@dataclass
class ImportReport:
    rows: int = 0
    registered: int = 0
    already_registered: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    heights: set[int] = field(default_factory=set)

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "registered": self.registered,
            "already_registered": self.already_registered,
            "failed": len(self.failures),
            "blocks": len(self.heights),
            "failures": [
                {"line": f.line, "identifier": f.identifier, "code": f.code, "message": f.message}
                for f in sorted(self.failures, key=lambda f: f.line)
            ],
        }


class Importer:
    """Sends batches on one SubmitStream and settles every row exactly once."""

    def __init__(
        self,
        client: NodeClient,
        builder: TxBuilder,
        owner: str,
        window: int,
        report: ImportReport,
        advance: Callable[[int], None],
    ) -> None:
        self._client = client
        self._builder = builder
        self._owner = owner
        self._window = max(1, window)
        self._report = report
        self._advance = advance
        self._work: deque[Batch] = deque()
        self._in_flight: deque[Batch] = deque()
        self._requests: queue.Queue[api_pb2.SubmitRequest | None] = queue.Queue()

    def _request_stream(self) -> Iterator[api_pb2.SubmitRequest]:
        while True:
            request = self._requests.get()
            if request is None:
                return
            yield request

    def run(self, batches: list[list[Row]]) -> None:
        self._work.extend(Batch(rows) for rows in batches)
        if not self._work:
            return
        responses = self._client.submit_stream(self._request_stream())
        try:
            while True:
                self._fill_window()
                if not self._in_flight:
                    break
                try:
                    response = next(responses)
                except StopIteration:
                    raise SparkError(
                        ErrorCode.UNAVAILABLE,
                        f"node at {self._client.target} closed the stream early",
                    ) from None
                self._settle(self._in_flight.popleft(), response)
        finally:
            self._requests.put(None)
            responses.close()

    def _fill_window(self) -> None:
        while self._work and len(self._in_flight) < self._window:
            batch = self._work.popleft()
            first = batch.rows[0].identifier
            tx = self._builder.register_batch(
                first.prefix.display,
                [(row.identifier.suffix, row.values) for row in batch.rows],
                self._owner,
                now_ms=now_ms(),
            )
            self._in_flight.append(batch)
            self._requests.put(
                api_pb2.SubmitRequest(tx=tx, wait_for_commit=True, timeout_ms=COMMIT_WAIT_MS)
            )

    def _settle(self, batch: Batch, response: api_pb2.SubmitResponse) -> None:
        if not response.error_code:
            self._report.registered += len(batch.rows)
            self._report.heights.add(response.height)
            self._advance(len(batch.rows))
            return
        code_text, message = response.error_code, response.error_message
        code = ErrorCode(code_text) if code_text in ErrorCode.__members__ else None
        item = response.error_item_index if response.HasField("error_item_index") else None
        if code is ErrorCode.EXISTS:
            self._drop_existing(batch, message, item)
        elif code in _RETRY:
            self._retry(batch, code_text, message)
        elif code in _BATCH_WIDE or code is None:
            self._fail(batch.rows, code_text, message)
        else:
            self._isolate(batch, code_text, message, item)

    def _fail(self, rows: list[Row], code: str, message: str) -> None:
        for row in rows:
            self._report.failures.append(
                RowFailure(row.line, row.identifier.display, code, message)
            )
        self._advance(len(rows))

    def _retry(self, batch: Batch, code: str, message: str) -> None:
        batch.attempts += 1
        if batch.attempts > MAX_RETRIES:
            self._fail(batch.rows, code, f"{message} (gave up after {MAX_RETRIES} tries)")
            return
        time.sleep(RETRY_PAUSE_S * min(batch.attempts, 4))
        self._work.appendleft(batch)

    def _isolate(self, batch: Batch, code: str, message: str, item: int | None) -> None:
        """A row is refused: fail the row at the position the node names (the error's item
        index), or halve the batch until the row is alone."""
        rows = batch.rows
        if item is not None and item < len(rows):
            position = item
            self._fail([rows[position]], code, _row_message(message, item))
            rest = rows[:position] + rows[position + 1 :]
            if rest:
                self._work.appendleft(Batch(rest, batch.attempts))
            return
        if len(rows) == 1:
            self._fail(rows, code, message)
            return
        middle = len(rows) // 2
        self._work.appendleft(Batch(rows[middle:], batch.attempts))
        self._work.appendleft(Batch(rows[:middle], batch.attempts))

    def _drop_existing(self, batch: Batch, message: str, item: int | None) -> None:
        """Resolve every row of the batch (concurrently): skip the registered ones."""
        pending = [(row, self._client.resolve_future(row.identifier.display)) for row in batch.rows]
        missing: list[Row] = []
        for row, future in pending:
            try:
                future.result()
            except grpc.RpcError as rpc_error:
                error = self._client.translate(rpc_error)
                if error.code is ErrorCode.NOT_FOUND:
                    missing.append(row)
                    continue
                raise error from None
            self._report.already_registered += 1
            self._advance(1)
        if len(missing) == len(batch.rows):
            # nothing exists, yet the node said EXISTS: find the row the hard way
            self._isolate(batch, str(ErrorCode.EXISTS), message, item)
        elif missing:
            self._work.appendleft(Batch(missing, batch.attempts))


def _row_message(message: str, item: int) -> str:
    """The node names the item by its place in the batch; the report names the row by its
    line, so the batch position is dropped from the text."""
    where = f"register_batch.items[{item}]"
    if message.startswith(where + ": "):
        return message[len(where) + 2 :]
    return message.replace(where, "row", 1)


# ---- the command ----


def _import(args: argparse.Namespace) -> int:
    if not 1 <= args.batch_size <= MAX_BATCH_ITEMS:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"--batch-size must be 1..{MAX_BATCH_ITEMS}")
    owner = ""
    if args.owner:
        parse_bid(args.owner)
        owner = args.owner
    key = load_signing_key(args)
    parsed = read_rows(args.file)
    if parsed.normalised:
        count = parsed.normalised
        plural = "identifier" if count == 1 else "identifiers"
        note(f"{count} {plural} normalised to Unicode NFC before signing")
    report = ImportReport(rows=len(parsed.rows) + len(parsed.failures))
    report.failures.extend(parsed.failures)
    batches = make_batches(parsed.rows, args.batch_size)
    # rich loads in ~0.1 s: only the command that draws a progress bar pays for it
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    show_progress = not args.no_progress and console.is_terminal
    progress = Progress(
        TextColumn("[bold]import[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
    )
    started = time.monotonic()
    unreachable: SparkError | None = None
    with NodeClient.from_args(args) as client, progress:
        task = progress.add_task("import", total=len(parsed.rows), rate="")

        def advance(count: int) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            done = report.registered + report.already_registered
            progress.update(task, advance=count, rate=f"{done / elapsed:,.0f} ids/s")

        importer = Importer(client, client.tx_builder(key), owner, args.window, report, advance)
        try:
            importer.run(batches)
        except SparkError as error:
            unreachable = error
    _print_report(report, args.json, time.monotonic() - started, unreachable)
    if unreachable is not None:
        return exit_code_for(unreachable)
    return EXIT_ERROR if report.failures else EXIT_OK


def _print_report(
    report: ImportReport, as_json: bool, elapsed_s: float, stopped: SparkError | None
) -> None:
    settled = report.registered + report.already_registered + len(report.failures)
    if as_json:
        out = report.to_dict()
        out["seconds"] = round(elapsed_s, 3)
        if stopped is not None:
            out["stopped"] = {"code": str(stopped.code), "message": stopped.message}
            out["unsettled"] = report.rows - settled
        emit_json(out)
        return
    for failure in sorted(report.failures, key=lambda f: f.line):
        emit_text(failure.text())
    emit_text(
        f"{report.rows} rows: {report.registered} registered, "
        f"{report.already_registered} already registered, {len(report.failures)} failed "
        f"({elapsed_s:.1f} s, {len(report.heights)} blocks)"
    )
    if stopped is not None:
        emit_text(
            f"stopped early with {report.rows - settled} rows unsettled: {stopped}; "
            "run the same import again to finish (rows already registered are skipped)",
            file=sys.stderr,
        )
