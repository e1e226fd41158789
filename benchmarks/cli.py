"""``python -m benchmarks [--quick] [--rows 1,3,7] [--server-grpc H:P --server-rest URL]``: measure,
print the table, write results and docs."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from shixin_client._spec import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT

from . import _decoding, _eval, _finetuning, _footprint, _fresh, _models, _serving, _training, _wire
from ._context import FULL, QUICK, ROOT, Context, Server
from ._report import table, write_chart, write_json, write_markdown, write_readme
from ._results import ERROR, VERDICTS, Row, not_measured

RESULTS = ROOT / "benchmarks" / "results.json"
DOCS = ROOT / "docs" / "benchmarks.md"
#: Its benchmark table is generated from RESULTS whenever a run writes RESULTS.
README = ROOT / "README.md"


@dataclass(frozen=True)
class Item:
    """One numbered item of the benchmark set; ``run`` returns its rows."""

    number: int
    title: str
    run: Callable[[Context], list[Row]]


ITEMS = (
    Item(1, "Import", _footprint.import_rows),
    Item(2, "Install footprint", _footprint.install_rows),
    Item(3, "Wire bytes", _wire.wire_rows),
    Item(4, "Client CPU", _wire.cpu_rows),
    Item(5, "Latency", _serving.latency_rows),
    Item(6, "Throughput", _serving.throughput_rows),
    Item(7, "Decoding", _decoding.decoding_rows),
    Item(8, "Embedded recognition", _models.embedded_rows),
    Item(9, "Model presets", _models.preset_rows),
    Item(10, "Generator", _models.generator_rows),
    Item(11, "One captcha in a fresh process", _fresh.fresh_rows),
    Item(12, "Accuracy, real-library set", _eval.java_eval_rows),
    Item(13, "Reject option", _eval.reject_rows),
    Item(14, "Training throughput", _training.training_rows),
    Item(15, "Fine-tuning on labelled captchas", _finetuning.finetuning_rows),
)


def _item_numbers(text: str) -> list[int]:
    known = {item.number for item in ITEMS}
    try:
        numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rows takes item numbers like 1,3,7, got {text!r}") from None
    unknown = set(numbers) - known
    if unknown or not numbers:
        raise argparse.ArgumentTypeError(
            f"--rows: unknown item(s) {sorted(unknown)}; items are 1..{max(known)}"
        )
    return numbers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure shixin-client against its baselines in one run; print a table, write "
        "benchmarks/results.json and regenerate docs/benchmarks.md with its chart.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts, and skip the install footprint (row 2)"
    )
    parser.add_argument(
        "--rows",
        type=_item_numbers,
        help="only these items, e.g. 1,3,7 (default: all); the results and docs written then hold only "
        "them, so point --results/--docs elsewhere to keep a full run",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="results JSON (default: %(default)s; writing it regenerates README.md's benchmark table)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=DOCS,
        help="Markdown report; the PNG chart goes beside it (default: %(default)s)",
    )
    outside = parser.add_argument_group(
        "rows 5 and 6 against a server started elsewhere",
        "e.g. TF Serving started by serving/run.sh on models/; both addresses or neither, and the "
        "server must answer with this run's model (checked) under the name shixin",
    )
    outside.add_argument(
        "--server-grpc", metavar="HOST:PORT", help=f"its gRPC address, e.g. localhost:{DEFAULT_GRPC_PORT}"
    )
    outside.add_argument(
        "--server-rest", metavar="URL", help=f"its REST URL, e.g. http://localhost:{DEFAULT_REST_PORT}"
    )
    return parser


def _server(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Server | None:
    if (args.server_grpc is None) != (args.server_rest is None):
        parser.error("--server-grpc and --server-rest go together: rows 5 and 6 time both")
    if args.server_grpc is None:
        return None
    if "://" in args.server_grpc:
        parser.error(f"--server-grpc takes HOST:PORT without a scheme, got {args.server_grpc!r}")
    if not args.server_rest.startswith(("http://", "https://")):
        parser.error(f"--server-rest takes an http(s):// URL, got {args.server_rest!r}")
    return Server(grpc=args.server_grpc, rest=args.server_rest.rstrip("/"))


def run_items(items: Sequence[Item], ctx: Context, log: Callable[[str], None]) -> list[Row]:
    """Every item's rows; an item that fails leaves an ERROR row and the run goes on."""
    rows: list[Row] = []
    for item in items:
        log(f"[{time.strftime('%H:%M:%S')}] {item.number}. {item.title} ...")
        start = time.monotonic()
        try:
            produced = item.run(ctx)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            produced = [
                not_measured(
                    str(item.number),
                    item.number,
                    item.title,
                    f"item {item.number} failed, so its rows are missing",
                    "",
                    None,
                    ERROR,
                    f"{type(exc).__name__}: {exc}",
                )
            ]
        log(f"    {time.monotonic() - start:.1f} s")
        rows.extend(produced)
    return rows


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    server = _server(parser, args)
    items = [item for item in ITEMS if args.rows is None or item.number in args.rows]
    ctx = Context(QUICK if args.quick else FULL, quick=args.quick, server=server)
    started = datetime.now(timezone.utc)
    load = round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None
    try:
        rows = run_items(items, ctx, lambda line: print(line, file=sys.stderr, flush=True))
        model = {
            "source": ctx.model_source,
            "trained": ctx.trained,
            "embedded": "shipped shixin_client/_assets/shixin.tflite"
            if ctx.embedded_trained
            else "stand-in converted from the model above (no shipped asset yet)",
        }
    finally:
        ctx.close()
    counts = Counter(row.verdict for row in rows)
    meta = {
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "started_at": started.strftime("%Y-%m-%d %H:%M"),
        "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "duration_s": round((datetime.now(timezone.utc) - started).total_seconds()),
        "quick": args.quick,
        "server": None if server is None else {"grpc": server.grpc, "rest": server.rest},
        "machine": {
            "cpu": _cpu_model(),
            "load_average_at_start": load,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "model": model,
        "verdicts": {verdict: counts[verdict] for verdict in VERDICTS if counts[verdict]},
    }
    print(table(rows))
    write_json(args.results, meta, rows)
    chart = args.docs.with_suffix(".png")
    write_chart(chart, rows)
    write_markdown(args.docs, chart, meta, rows)
    written = [str(args.results), str(args.docs), str(chart)]
    if args.results.resolve() == RESULTS.resolve():
        write_readme(README, json.loads(RESULTS.read_text(encoding="utf-8")))
        written.append(str(README))
    print(f"\nwrote {', '.join(written)}", file=sys.stderr)
    return 1 if counts[ERROR] else 0
