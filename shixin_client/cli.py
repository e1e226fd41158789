"""The ``shixin`` command: arguments in, the public client API, formatted results out.

::

    shixin recognize PATH... [--server URL] [--format tsv|json|csv]   image files, folders, globs
    shixin score PATH... [--server URL] [--min-accuracy PCT]          labelled files: accuracy
    shixin status | metadata [--server URL]                           JSON on stdout
    shixin serve ...                                                  the local server ([server] extra)
    shixin --version                                                  the program's version

``PATH`` may be ``-``: stdin then holds either one image (binary data: it has NUL bytes
or is not UTF-8) or a list of paths, one per line (text); empty stdin is an error. A
folder is searched for :data:`shixin_client.IMAGE_SUFFIXES`. Without ``--server`` the
URL comes from ``$SHIXIN_SERVER``, and without that the embedded model is used; the
lines its runtime prints on stderr when it starts are shown only with ``--verbose``.

``recognize`` rejects a reading less confident than ``--min-confidence`` (the SDK's
calibrated default unless given; 0 turns it off): the image is reported on stderr as
rejected, with the reading and its confidence, and counts as failed. ``--format json`` and
``csv`` carry every reading's confidence, rejected ones marked as such.

``score`` reads files named ``<label>_<anything>`` (the reference naming) and reports exact
match and per-character accuracy, ignoring case, with every misread: the way to measure
a model on a site's own captchas without TensorFlow. Every reading is scored, and the
report adds how many fall under ``--min-confidence`` and the error among the others. A
file whose name carries no label, or a label of another length than the model reads, is
reported as not scored.

Exit status: 0 when every image was recognised, 1 when some failed or were rejected (each
one line on stderr; the others are still printed) or ``score`` fell below
``--min-accuracy``, 2 for usage errors, a missing extra, or when the server or model
cannot be used at all, 141 (as ``cat`` under a shell) when stdout is closed early
(``| head``), quietly. Header values given with ``--header`` are sent but never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import glob
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, TextIO, Union

from . import (
    IMAGE_SUFFIXES,
    SITE_ALPHABET,
    InvalidInputError,
    LowConfidenceError,
    MissingDependencyError,
    Prediction,
    ShixinClient,
    ShixinError,
    TLSConfig,
    server_from_env,
)
from ._scoring import Score, label_of, score
from ._version import __version__

#: Show a progress bar (tqdm, the [cli] extra) from this many images on.
PROGRESS_FROM = 20

EXIT_OK, EXIT_SOME_FAILED, EXIT_UNUSABLE = 0, 1, 2
#: 128 + SIGPIPE: what a shell reports for ``cat`` when the reader of its output goes away.
EXIT_BROKEN_PIPE = 141

Source = Union[str, bytes]  # a path, or image bytes read from stdin
Failure = tuple[str, ShixinError]  # a path, and why it was not read
Reading = Union[Prediction, ShixinError]  # what became of one image
Misread = tuple[str, str, str]  # a path, its label, the reading

_RECOGNIZE_EXAMPLES = """\
examples:
  shixin recognize captcha.png                   the embedded model, no server
  shixin recognize captchas/ --format json       every image in a folder, as JSON
  ls captchas/*.png | shixin recognize -         paths from stdin, one per line
  shixin recognize - < captcha.png               one image from stdin
  shixin recognize captcha.png --server http://localhost:8501 --model-version 2
  shixin recognize captchas/ --min-confidence 0  never reject: print every reading
"""
_SCORE_EXAMPLES = """\
examples:
  shixin score labelled/                         files named <label>_<anything>, e.g. 347h_9ac6.png
  shixin score labelled/ --min-accuracy 95       exit 1 when exact match is below 95%
  shixin score labelled/ --format json           every misread and confusion, as JSON
"""
_STATUS_EXAMPLES = """\
examples:
  shixin status                                  the embedded model
  shixin status --server http://localhost:8501 --model shixin
"""
_METADATA_EXAMPLES = """\
examples:
  shixin metadata                                the embedded model
  shixin metadata --server grpc://localhost:8500 --label stable
"""


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """Which server and model to ask, and how: every command but ``serve`` takes these."""
    group = parser.add_argument_group("server")
    group.add_argument(
        "--server", help="http(s):// or grpc(s):// URL; default $SHIXIN_SERVER, else the embedded model"
    )
    group.add_argument("--model", help="model name on the server")
    pick = group.add_mutually_exclusive_group()
    pick.add_argument("--model-version", type=int, metavar="N", help="the served model's version number")
    pick.add_argument("--label", help="the served model's version label")
    group.add_argument("--timeout", type=float, help="connect and read timeout in seconds")
    group.add_argument(
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="K=V",
        help="extra request header (auth); never printed",
    )
    group.add_argument("--ca-file", help="CA bundle that signed the server's certificate")
    group.add_argument("--cert-file", help="client certificate for mTLS")
    group.add_argument("--key-file", help="client key for mTLS")
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log retries and failovers, and the embedded model runtime's start-up lines, on stderr",
    )


def _add_reading_options(parser: argparse.ArgumentParser) -> None:
    """How images are read: only the commands that read images take these."""
    group = parser.add_argument_group("reading")
    group.add_argument(
        "--payload",
        choices=("image", "tensor"),
        help="what is sent: the image file (default) or the preprocessed float tensor",
    )
    group.add_argument("--signature", help="signature name, when the model's differs from the payload's own")
    group.add_argument("--batch-size", type=int, help="images per request")
    group.add_argument(
        "--alphabet",
        metavar="CHARS",
        help="read only these characters; 'site' is the court site's own (no 0, 1, j, o)",
    )
    group.add_argument(
        "--min-confidence",
        type=_confidence,
        metavar="P",
        help="reject readings less confident than P, from 0 (off) to 1 (default: the SDK's calibrated one)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shixin",
        description="Recognise captcha images.",
        epilog="Each command's --help shows its options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, examples: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_server_options(sub)
        if name in ("recognize", "score"):
            _add_reading_options(sub)
        return sub

    recognize = command("recognize", "print the text of each image", _RECOGNIZE_EXAMPLES)
    recognize.add_argument(
        "paths", nargs="+", metavar="PATH", help="image file, folder, glob, or - for stdin"
    )
    recognize.add_argument("--format", choices=("tsv", "json", "csv"), default="tsv", help="output format")
    scoring = command(
        "score", "read labelled captchas (<label>_<anything>.png) and report accuracy", _SCORE_EXAMPLES
    )
    scoring.add_argument("paths", nargs="+", metavar="PATH", help="labelled image file, folder or glob")
    scoring.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    scoring.add_argument(
        "--min-accuracy",
        type=_percentage,
        metavar="PCT",
        help="exit 1 when exact match is below this percentage (100: every captcha)",
    )
    command("status", "the model's versions and states, as JSON", _STATUS_EXAMPLES)
    command("metadata", "the model's signatures, as JSON", _METADATA_EXAMPLES)
    commands.add_parser(
        "serve", add_help=False, help="run the local TF Serving-compatible server ([server] extra)"
    )
    return parser


def _number_in(text: str, high: float, wanted: str) -> float:
    """``text`` as a number from 0 to ``high``, or the argparse error that says ``wanted``."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= high:
        raise argparse.ArgumentTypeError(f"needs {wanted}, got {text!r}")
    return value


def _percentage(text: str) -> float:
    return _number_in(text, 100, "a percentage from 0 to 100")


def _confidence(text: str) -> float:
    return _number_in(text, 1, "a number from 0 (off) to 1")


def _header(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        # Never echoed: "Authorization: Bearer ..." (curl's spelling) holds the secret itself.
        raise argparse.ArgumentTypeError(
            "needs KEY=VALUE, e.g. Authorization='Bearer TOKEN' (the text given is not shown: "
            + ("it has no '='" if not sep else "its key before '=' is empty")
            + ")"
        )
    return key.strip(), value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one ``shixin`` command and return its exit status (see the module docstring)."""
    try:
        status = _run(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # inside the try: a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return status


def _discard_stdout() -> None:
    """Point stdout's file descriptor at /dev/null, so the interpreter's final flush of the
    output nobody reads any more does not fail a second time (Python's documented recipe)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stand-in stdout with no descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _run(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        return _serve(argv[1:])
    args = _parser().parse_args(argv)
    # The library's own lines already start with "shixin_client: "; only the CLI adds a handler.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        client = _client(args)
    except ShixinError as exc:
        return _fail(f"cannot use the model: {exc}")
    with client:
        try:
            if args.command == "recognize":
                return _recognize(client, args)
            if args.command == "score":
                return _score(client, args)
            result = client.status() if args.command == "status" else client.metadata()
        except ShixinError as exc:
            return _fail(str(exc))
    json.dump(dataclasses.asdict(result), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def _fail(message: str, code: int = EXIT_UNUSABLE) -> int:
    print(f"shixin: {message}", file=sys.stderr)
    return code


def _serve(argv: list[str]) -> int:
    """``shixin serve``: the server's own command line; a module the [server] extra brings
    that is missing, at start-up or later, is one line naming the extra."""
    try:
        from shixin_client.server.cli import main as serve_main

        return serve_main(argv)
    except ImportError as exc:
        missing = f" (no module named {exc.name!r})" if exc.name else ""
        return _fail(f"{MissingDependencyError('shixin serve', 'server')}{missing}")


@contextlib.contextmanager
def _native_stderr_silenced(silence: bool) -> Iterator[None]:
    """File descriptor 2 points at /dev/null inside, then back.

    LiteRT's C++ prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` when
    the embedded model's first interpreter is built, straight to the descriptor and with
    no setting to turn it off; it prints it once per process, so silencing the model's
    creation silences the run. Python's own stderr is flushed first and writes nothing inside.
    """
    if not silence:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _client(args: argparse.Namespace) -> ShixinClient:
    options: dict[str, Any] = {}
    if args.model:
        options["model"] = args.model
    if args.model_version is not None:
        options["version"] = args.model_version
    for key in ("label", "timeout", "payload", "signature", "batch_size", "min_confidence"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    if getattr(args, "alphabet", None) is not None:
        options["alphabet"] = SITE_ALPHABET if args.alphabet == "site" else args.alphabet
    server = args.server or server_from_env()
    if server is None:
        with _native_stderr_silenced(not args.verbose):
            local = ShixinClient.local()
        return local.with_options(**options)
    tls = None
    if args.ca_file or args.cert_file or args.key_file:
        tls = TLSConfig(ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file)
    return ShixinClient(server, tls=tls, headers=dict(args.header)).with_options(**options)


def _expand(paths: Sequence[str], stdin: Any) -> Iterator[tuple[str, Union[Source, ShixinError]]]:
    """(name, image or the error that stands for it) for every PATH argument, in order."""
    for path in paths:
        if path == "-":
            data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
            if isinstance(data, str):
                data = data.encode("utf-8")
            if _is_binary(data):
                yield "-", data
                continue
            listed = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
            if not listed:
                yield (
                    "-",
                    InvalidInputError("stdin", "stdin is empty: give image data or paths, one per line"),
                )
            yield from _expand(listed, None)
        elif any(char in path for char in "*?["):
            matches = [match for match in sorted(glob.glob(path, recursive=True)) if Path(match).is_file()]
            if not matches:
                yield path, InvalidInputError(repr(path), "no files match this pattern")
            yield from ((match, match) for match in matches)
        elif Path(path).is_dir():
            found = sorted(
                p for p in Path(path).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                yield path, InvalidInputError(repr(path), "folder holds no image files")
            yield from ((str(p), str(p)) for p in found)
        else:
            yield path, path


def _is_binary(data: bytes) -> bool:
    if b"\0" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _read(client: ShixinClient, sources: list[Union[Source, ShixinError]]) -> list[Reading]:
    """Every source's reading with its confidence, in order; an error stands in for each one
    that failed. Nothing is rejected here: see :func:`_accepted`."""
    todo = [(i, source) for i, source in enumerate(sources) if not isinstance(source, ShixinError)]
    read: dict[int, Reading] = {}
    step = client.batch_size
    with _progress(len(todo)) as bar:
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            answers = client.predict_many([source for _, source in chunk], return_exceptions=True)
            read.update((index, answer) for (index, _), answer in zip(chunk, answers, strict=True))
            bar.update(len(chunk))
    return [source if isinstance(source, ShixinError) else read[i] for i, source in enumerate(sources)]


def _accepted(names: Sequence[str], readings: Sequence[Reading], threshold: float) -> list[Reading]:
    """The readings ``recognize`` would return: one under ``threshold`` becomes its
    LowConfidenceError, decided by :meth:`Prediction.accepted` as the SDK decides it."""
    return [
        LowConfidenceError(repr(name), r.text, r.confidence, threshold)
        if isinstance(r, Prediction) and not r.accepted(threshold)
        else r
        for name, r in zip(names, readings, strict=True)
    ]


def _report_failures(names: Sequence[str], results: Sequence[Reading]) -> list[Failure]:
    """One stderr line per image that failed or was rejected; those images and their errors."""
    failures = [(name, r) for name, r in zip(names, results, strict=True) if isinstance(r, ShixinError)]
    for name, error in failures:
        print(f"shixin: {name}: {_reason(error)}", file=sys.stderr)
    return failures


def _recognize(client: ShixinClient, args: argparse.Namespace) -> int:
    entries = list(_expand(args.paths, sys.stdin))
    names = [name for name, _ in entries]
    results = _accepted(names, _read(client, [source for _, source in entries]), client.min_confidence)
    failures = _report_failures(names, results)
    _write(list(zip(names, results, strict=True)), args.format, sys.stdout)
    return EXIT_SOME_FAILED if failures else EXIT_OK


def _labelled(
    name: str, source: Union[Source, ShixinError], length: int
) -> tuple[str, Union[Source, ShixinError]]:
    """(label, source), or ("", the error) for a file whose name gives no label of ``length``."""
    if isinstance(source, ShixinError):
        return "", source
    if not isinstance(source, str):
        return "", InvalidInputError("stdin", "image data from stdin carries no label; give labelled files")
    try:
        return label_of(name, length), source
    except InvalidInputError as exc:
        return "", exc


def _score(client: ShixinClient, args: argparse.Namespace) -> int:
    length = client.get_spec().label_length
    entries = [(name, *_labelled(name, source, length)) for name, source in _expand(args.paths, sys.stdin)]
    names = [name for name, _, _ in entries]
    results = _read(client, [source for _, _, source in entries])
    errors = _report_failures(names, results)
    read = [
        (name, label, reading)
        for (name, label, _), reading in zip(entries, results, strict=True)
        if isinstance(reading, Prediction)
    ]
    scored = score((label, reading.text) for _, label, reading in read)
    misreads = [(name, label, r.text) for name, label, r in read if label != r.text.lower()]
    threshold = client.min_confidence
    accepted = score((label, r.text) for _, label, r in read if r.accepted(threshold))
    rejection = _Rejection(threshold, scored.readings - accepted.readings, accepted)
    if args.format == "json":
        _write_score_json(scored, rejection, misreads, errors, sys.stdout)
    else:
        _write_score_text(scored, rejection, misreads, errors, sys.stdout)
    below = args.min_accuracy is not None and (
        not scored.readings or 100 * scored.exact_match < args.min_accuracy
    )
    if below:
        print(f"shixin: exact match is below --min-accuracy {args.min_accuracy:g}%", file=sys.stderr)
    return EXIT_SOME_FAILED if errors or below else EXIT_OK


@dataclasses.dataclass(frozen=True)
class _Rejection:
    """What ``recognize`` would have done with the scored readings at ``threshold``."""

    threshold: float
    rejected: int
    accepted: Score

    @property
    def accepted_error(self) -> float:
        return 1 - self.accepted.exact_match if self.accepted.readings else 0.0


def _write_score_text(
    scored: Score, rejection: _Rejection, misreads: list[Misread], errors: list[Failure], out: TextIO
) -> None:
    for name, label, text in misreads:
        out.write(f"{name}\t{label} -> {text or '<empty>'}\n")
    out.write(
        f"exact match: {scored.exact_match:.2%} ({scored.exact} of {scored.readings})\n"
        f"per character: {scored.char_accuracy:.2%} ({scored.characters_right} of {scored.characters})\n"
        f"under min_confidence {rejection.threshold:g}: {rejection.rejected} rejected; "
        f"error among the {rejection.accepted.readings} accepted: {rejection.accepted_error:.2%}\n"
    )
    if errors:
        out.write(f"not scored: {len(errors)} file(s), unlabelled or unreadable (see stderr)\n")


def _write_score_json(
    scored: Score, rejection: _Rejection, misreads: list[Misread], errors: list[Failure], out: TextIO
) -> None:
    record = {
        "scored": scored.readings,
        "exact": scored.exact,
        "exact_match": scored.exact_match,
        "characters": scored.characters,
        "characters_right": scored.characters_right,
        "char_accuracy": scored.char_accuracy,
        "min_confidence": rejection.threshold,
        "rejected": rejection.rejected,
        "accepted_error": rejection.accepted_error,
        "not_scored": [_error_record(name, error) for name, error in errors],
        "misreads": [{"path": name, "label": label, "read": text} for name, label, text in misreads],
        "confusions": [
            {"true": truth, "read": read, "count": count}
            for (truth, read), count in scored.confusions.most_common()
        ],
    }
    json.dump(record, out, indent=2, ensure_ascii=False)
    out.write("\n")


def _error_record(name: str, error: ShixinError) -> dict[str, Any]:
    record: dict[str, Any] = {"path": name, "error": _reason(error), "type": type(error).__name__}
    if isinstance(error, LowConfidenceError):
        record.update(text=error.text, confidence=error.confidence)
    return record


def _reason(error: ShixinError) -> str:
    """The error's text without repeating the file name the line already starts with."""
    if isinstance(error, InvalidInputError):
        return error.problem
    if isinstance(error, LowConfidenceError):
        return (
            f"rejected: read {error.text!r} at confidence {error.confidence:.3f}, "
            f"under min_confidence {error.threshold:g}"
        )
    return str(error)


def _write(rows: list[tuple[str, Reading]], fmt: str, out: TextIO) -> None:
    """Accepted readings in every format; json and csv add each confidence, and the rows
    rejected for low confidence (csv: ``rejected`` is 1), so a caller can pick its own cut."""
    if fmt == "json":
        records = [
            {"path": name, "text": result.text, "confidence": result.confidence}
            if isinstance(result, Prediction)
            else _error_record(name, result)
            for name, result in rows
        ]
        json.dump(records, out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "text", "confidence", "rejected"])
        for name, result in rows:
            if isinstance(result, Prediction):
                writer.writerow((name, result.text, f"{result.confidence:.6f}", 0))
            elif isinstance(result, LowConfidenceError):
                writer.writerow((name, result.text, f"{result.confidence:.6f}", 1))
        out.write(buffer.getvalue())
    else:
        for name, result in rows:
            if isinstance(result, Prediction):
                out.write(f"{name}\t{result.text}\n")


class _NoProgress:
    def update(self, count: int) -> None:
        """No bar: tqdm is not installed, or there are too few images to need one."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


def _progress(total: int) -> Any:
    if total < PROGRESS_FROM:
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, file=sys.stderr, unit="img", disable=None)
