#!/usr/bin/env python3
"""Move a version label in models.config only onto a version the server reports AVAILABLE.

TensorFlow Serving moves an existing label only onto a version that is already AVAILABLE, and
refuses the whole config otherwise (docs/tf-serving-compat.md §3.3). So "add version 2 and
point canary at it" in one edit fails at every config poll and version 2 never loads. A canary
takes two edits with a wait between them, which this script makes:

1. ``--add-version``: add VERSION to the model's ``specific`` version policy (if missing);
2. wait until ``GET /v1/models/MODEL/versions/VERSION`` reports AVAILABLE (refuse if it does
   not within ``--timeout``, or if its load failed);
3. point LABEL at VERSION, then wait until the server resolves the label to it.

Each edit rewrites only the tokens it changes (comments and layout stay) and replaces the file
atomically (a temporary file beside it, then a rename), so the server never reads half a file.
``--after-edit`` runs a shell command after each edit, for servers that do not read this file
directly (Kubernetes: regenerate and apply the ConfigMap). A rollback is the same command with
the old version, which is still loaded. Usage::

    python serving/move_label.py canary 2 --add-version   # canary rollout
    python serving/move_label.py stable 2                 # promote
    python serving/move_label.py canary 1                 # roll back

It needs only Python's standard library, so it runs from a checkout on any host that can reach
the server's REST port. Exit status: 0 done, 1 refused or failed (the message says which edits
were made), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "models.config"
#: serving/.env holds the kit's default ports; a variable set in the environment wins, as in run.sh.
ENV_FILE = HERE / ".env"
#: Long enough for one config poll (60 s in the launchers) plus a first load (SHIXIN_START_TIMEOUT_S).
DEFAULT_TIMEOUT_S = 300.0
POLL_INTERVAL_S = 1.0
HTTP_TIMEOUT_S = 5.0
#: The label syntax TF Serving documents (g3doc/serving_config.md).
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_]+")
PROG = "serving/move_label.py"


class Refused(Exception):
    """The label was not moved (or not confirmed); the message says why and what was edited."""


class ConfigSyntaxError(Refused):
    """models.config is not text proto this script can edit."""


# --- Text proto, parsed only as far as editing needs ----------------------------------------


@dataclass
class Token:
    kind: str  # "name" (identifiers and numbers), "string" or "punct"
    text: str
    start: int
    end: int


@dataclass
class Field:
    """One ``name: value`` or ``name { ... }`` of a text proto, with its offsets in the file."""

    name: str
    start: int
    end: int
    values: list[Token] = field(default_factory=list)
    children: list[Field] | None = None
    #: Offset of the closing ``}`` (messages) or ``]`` (scalar lists), else -1.
    close: int = -1

    def all(self, name: str) -> list[Field]:
        return [child for child in self.children or [] if child.name == name]

    def one(self, name: str) -> Field | None:
        found = self.all(name)
        return found[-1] if found else None


_TOKEN = re.compile(
    r"""(?P<space>\s+)|(?P<comment>\#[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    r"""|(?P<name>[A-Za-z0-9_.+-]+)|(?P<punct>[{}<>\[\]:,;])"""
)
_CLOSERS = {"{": "}", "<": ">"}


def tokenize(text: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise ConfigSyntaxError(f"line {line}: unexpected {text[position]!r}")
        kind = match.lastgroup or ""
        if kind in ("string", "name", "punct"):
            tokens.append(Token(kind, match.group(), match.start(), match.end()))
        position = match.end()
    return tokens


def unquote(token: Token) -> str:
    if token.kind != "string":
        return token.text
    return token.text[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def fail(self, message: str) -> NoReturn:
        offset = self.tokens[self.index].start if self.index < len(self.tokens) else len(self.text)
        raise ConfigSyntaxError(f"line {self.text.count(chr(10), 0, offset) + 1}: {message}")

    def next(self) -> Token:
        if self.index >= len(self.tokens):
            self.fail("unexpected end of file")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def peek(self, text: str) -> bool:
        return self.index < len(self.tokens) and self.tokens[self.index].text == text

    def fields(self, closer: str | None) -> tuple[list[Field], int]:
        found: list[Field] = []
        while True:
            if closer is None and self.index >= len(self.tokens):
                return found, len(self.text)
            if closer is not None and self.peek(closer):
                return found, self.next().start
            found.append(self.field())

    def field(self) -> Field:
        name = self.next()
        if name.kind != "name":
            self.fail(f"expected a field name, found {name.text!r}")
        colon = self.peek(":")
        if colon:
            self.next()
        token = self.next()
        result = Field(name.text, name.start, token.end)
        if token.text in _CLOSERS:
            result.children, result.close = self.fields(_CLOSERS[token.text])
            result.end = result.close + 1
        elif not colon:
            self.fail(f"expected ':' or '{{' after {name.text}")
        elif token.text == "[":
            while not self.peek("]"):
                value = self.next()
                if value.kind == "punct":
                    self.fail(f"expected a value in the list of {name.text}")
                result.values.append(value)
                if self.peek(","):
                    self.next()
            result.close = self.next().start
            result.end = result.close + 1
        elif token.kind == "punct":
            self.fail(f"expected a value for {name.text}, found {token.text!r}")
        else:
            result.values.append(token)
        if self.peek(",") or self.peek(";"):
            self.next()
        return result


def parse(text: str) -> Field:
    """The whole file as one message field (offsets refer to ``text``)."""
    parser = _Parser(text)
    children, end = parser.fields(None)
    return Field("", 0, end, children=children, close=end)


# --- The model's config, its policy and its labels --------------------------------------------


def model_configs(root: Field) -> list[Field]:
    lists = root.all("model_config_list")
    if len(lists) != 1:
        raise Refused("the file must hold one model_config_list (a ModelServerConfig text proto)")
    return lists[0].all("config")


def model_name(config: Field) -> str:
    name = config.one("name")
    return unquote(name.values[0]) if name and name.values else ""


def find_model(root: Field, wanted: str | None) -> Field:
    configs = model_configs(root)
    names = [model_name(config) for config in configs]
    if wanted is None:
        if len(configs) != 1:
            raise Refused(f"the file configures {len(configs)} models ({', '.join(names)}); pass --model")
        return configs[0]
    if wanted not in names:
        raise Refused(f"the file configures no model named {wanted!r} (it has: {', '.join(names) or 'none'})")
    return configs[names.index(wanted)]


def policy_kind(config: Field) -> str:
    """``specific``, ``latest`` or ``all``; TF Serving's default policy is ``latest``."""
    policy = config.one("model_version_policy")
    for kind in ("specific", "latest", "all"):
        if policy is not None and policy.one(kind) is not None:
            return kind
    return "latest"


def policy_versions(config: Field) -> list[int]:
    policy = config.one("model_version_policy")
    specific = policy.one("specific") if policy else None
    if specific is None:
        return []
    return [int(value.text) for versions in specific.all("versions") for value in versions.values]


def labels(config: Field) -> dict[str, tuple[Field, Token | None]]:
    """Label -> (its version_labels entry, the value token, None when the value is left out)."""
    found: dict[str, tuple[Field, Token | None]] = {}
    for entry in config.all("version_labels"):
        key, value = entry.one("key"), entry.one("value")
        if key is None or not key.values:
            raise Refused(f"a version_labels entry of {model_name(config)!r} has no key")
        found[unquote(key.values[0])] = (entry, value.values[0] if value and value.values else None)
    return found


def labels_tokens(entry: Field) -> tuple[Token, Token]:
    """The key and value tokens of a version_labels entry that has both."""
    key, value = entry.one("key"), entry.one("value")
    assert key is not None and key.values and value is not None and value.values
    return key.values[0], value.values[0]


def label_versions(config: Field) -> dict[str, int]:
    return {name: int(token.text) if token else 0 for name, (_, token) in labels(config).items()}


# --- Edits: insert or replace tokens, keeping everything else as written --------------------


@dataclass
class Edit:
    start: int
    end: int
    text: str


def apply(text: str, edits: list[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def indent_of(text: str, offset: int) -> str | None:
    """The indentation before ``offset`` when it starts its own line, else None."""
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset]
    return before if not before.strip() else None


def insert_after(text: str, last: Field, new: str) -> Edit:
    """``new`` after sibling ``last``, on its own line with the same indent if ``last`` has one."""
    indent = indent_of(text, last.start)
    if indent is None:
        return Edit(last.end, last.end, " " + new)
    return Edit(last.end, last.end, "\n" + indent + new.replace("\n", "\n" + indent))


def insert_into(text: str, block: Field, new: str) -> Edit:
    """``new`` as the last field of an empty (or field-less) message ``block``."""
    indent = indent_of(text, block.close)
    if indent is None:
        return Edit(block.close, block.close, new + " ")
    inner = indent + "  "
    return Edit(block.close, block.close, "  " + new.replace("\n", "\n" + inner) + "\n" + indent)


def add_version_edit(text: str, config: Field, version: int) -> Edit:
    policy = config.one("model_version_policy")
    specific = policy.one("specific") if policy else None
    assert specific is not None, "callers check policy_kind first"
    versions = specific.all("versions")
    if not versions:
        return insert_into(text, specific, f"versions: {version}")
    last = versions[-1]
    if last.close >= 0:  # versions: [1, 2]
        separator = ", " if last.values else ""
        return Edit(last.close, last.close, f"{separator}{version}")
    return insert_after(text, last, f"versions: {version}")


def set_label_edit(text: str, config: Field, label: str, version: int) -> Edit:
    found = labels(config)
    if label in found:
        entry, value = found[label]
        if value is not None:
            return Edit(value.start, value.end, str(version))
        assert entry.children is not None
        if entry.children:
            return insert_after(text, entry.children[-1], f"value: {version}")
        return insert_into(text, entry, f"value: {version}")
    entries = [entry for entry, value in found.values() if value is not None]
    if entries:  # a copy of the last entry, keeping its layout and quotes, with the new key and value
        last = entries[-1]
        key, value = labels_tokens(last)
        quote = key.text[0] if key.kind == "string" else '"'
        entry_text = apply(
            text[last.start : last.end],
            [
                Edit(key.start - last.start, key.end - last.start, f"{quote}{label}{quote}"),
                Edit(value.start - last.start, value.end - last.start, str(version)),
            ],
        )
        indent = indent_of(text, last.start)
        if indent is not None:  # the copy's inner lines already carry their indent
            return Edit(last.end, last.end, "\n" + indent + entry_text)
        return Edit(last.end, last.end, " " + entry_text)
    new = f'version_labels {{\n  key: "{label}"\n  value: {version}\n}}'
    assert config.children
    if indent_of(text, config.children[-1].start) is None:
        new = f'version_labels {{ key: "{label}" value: {version} }}'
    return insert_after(text, config.children[-1], new)


# --- Files ----------------------------------------------------------------------------------


def write_atomically(path: Path, text: str, expected: str) -> None:
    """Replace ``path`` by a rename, after checking nobody else changed it since we read it."""
    if path.read_text(encoding="utf-8") != expected:
        raise Refused(f"{path} changed while this script was editing it; run it again")
    mode = stat.S_IMODE(path.stat().st_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def env_setting(key: str) -> str | None:
    """KEY from the environment, else from serving/.env (the kit's one place for defaults)."""
    if os.environ.get(key):
        return os.environ[key]
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text(encoding="utf-8").splitlines():
            name, separator, value = line.partition("=")
            if separator and name.strip() == key:
                return value.strip()
    return None


def default_server() -> str | None:
    port = env_setting("SHIXIN_REST_PORT")
    return f"http://127.0.0.1:{port}" if port else None


# --- The server's REST API (docs/tf-serving-compat.md §1.7, §1.8) -----------------------------


@dataclass(frozen=True)
class Answer:
    """One GET: the HTTP status and the JSON body, or why there was none."""

    status: int
    body: dict[str, Any]
    problem: str = ""


def get_json(url: str) -> Answer:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return Answer(response.status, json.loads(response.read().decode("utf-8")))
    except urllib.error.HTTPError as error:
        payload = error.read().decode("utf-8", "replace")
        try:
            body = json.loads(payload)
        except ValueError:
            body = {}
        message = body.get("error", payload.strip()) if isinstance(body, dict) else payload.strip()
        return Answer(error.code, body if isinstance(body, dict) else {}, f"HTTP {error.code}: {message}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return Answer(0, {}, f"no answer from {url} ({reason})")


class Server:
    def __init__(self, url: str, model: str) -> None:
        self.base = f"{url.rstrip('/')}/v1/models/{urllib.parse.quote(model, safe='')}"

    def version_state(self, version: int) -> tuple[str, str]:
        """(state, problem): AVAILABLE, LOADING, END... or "" with the reason it is not known."""
        answer = get_json(f"{self.base}/versions/{version}")
        if answer.problem:
            return "", answer.problem
        for entry in answer.body.get("model_version_status", []):
            if str(entry.get("version")) == str(version):
                status = entry.get("status") or {}
                problem = "" if status.get("error_code", "OK") == "OK" else status.get("error_message", "")
                return str(entry.get("state", "")), problem
        return "", f"the status of version {version} does not list it"

    def label_version(self, label: str) -> tuple[int | None, str]:
        """The version the server resolves ``label`` to now (metadata resolves labels; status does not)."""
        answer = get_json(f"{self.base}/labels/{urllib.parse.quote(label, safe='')}/metadata")
        if answer.problem:
            return None, answer.problem
        version = answer.body.get("model_spec", {}).get("version")
        return (int(version), "") if version is not None else (None, "the metadata names no version")


def wait_for(
    check: Callable[[], tuple[bool, str]], timeout_s: float, sleep: Callable[[float], None] = time.sleep
) -> tuple[bool, str]:
    """Call ``check`` until it is done or ``timeout_s`` passed; returns its last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, detail = check()
        if done or time.monotonic() >= deadline:
            return done, detail
        sleep(POLL_INTERVAL_S)


# --- The procedure --------------------------------------------------------------------------


@dataclass
class Request:
    config: Path
    model: str
    label: str
    version: int
    server: Server
    add_version: bool
    timeout_s: float
    after_edit: str | None


def say(message: str) -> None:
    print(message, flush=True)


def edit(request: Request, before: str, after: str, what: str) -> None:
    write_atomically(request.config, after, before)
    say(f"{what} in {request.config}")
    if request.after_edit:
        result = subprocess.run(request.after_edit, shell=True, check=False)
        if result.returncode != 0:
            raise Refused(f"--after-edit command exited {result.returncode}: {request.after_edit}")


def wait_until_available(request: Request, model: str, added: bool) -> None:
    version = request.version
    say(f"waiting up to {request.timeout_s:g} s for version {version} of {model} to be AVAILABLE")

    def check() -> tuple[bool, str]:
        state, problem = request.server.version_state(version)
        if state == "END" and problem:
            raise Refused(f"version {version} of {model} failed to load: {problem}")
        return state == "AVAILABLE", state or problem

    available, detail = wait_for(check, request.timeout_s)
    if not available:
        edited = f" (version {version} was added to the policy and stays there)" if added else ""
        raise Refused(
            f"version {version} of {model} is not AVAILABLE ({detail}), so label {request.label!r} "
            f"stays where it is{edited}; is {version} exported under the model's base path and "
            "does the server read this config?"
        )


def move_label(request: Request) -> None:
    """Add the version if asked, wait for AVAILABLE, move the label, wait for the server to apply it."""
    text = request.config.read_text(encoding="utf-8")
    config = find_model(parse(text), request.model)
    model, version, label = request.model, request.version, request.label
    added = False
    if version not in policy_versions(config) and policy_kind(config) == "specific":
        if not request.add_version:
            raise Refused(
                f"version {version} is not in the version policy of {model} "
                f"(versions: {policy_versions(config)}); pass --add-version to add it and wait for it to load"
            )
        new_text = apply(text, [add_version_edit(text, config, version)])
        if version not in policy_versions(find_model(parse(new_text), model)):
            raise AssertionError("adding the version did not add it")
        edit(request, text, new_text, f"added version {version} to the policy of {model}")
        text, added = new_text, True
    elif request.add_version and policy_kind(config) != "specific":
        raise Refused(
            f"the version policy of {model} is {policy_kind(config)!r}: the server loads versions from "
            "the base path by itself, so there is nothing to add; run without --add-version"
        )
    wait_until_available(request, model, added)
    config = find_model(parse(text), model)
    previous = label_versions(config).get(label)
    if previous == version:
        say(f"label {label!r} of {model} already names version {version}")
    else:
        new_text = apply(text, [set_label_edit(text, config, label, version)])
        if label_versions(find_model(parse(new_text), model)).get(label) != version:
            raise AssertionError("moving the label did not move it")
        was = "new label" if previous is None else f"was {previous}"
        edit(request, text, new_text, f"pointed label {label!r} of {model} at version {version} ({was})")

    def applied() -> tuple[bool, str]:
        served, problem = request.server.label_version(label)
        return served == version, problem or f"it resolves {label!r} to version {served}"

    done, detail = wait_for(applied, request.timeout_s)
    if not done:
        raise Refused(
            f"the file names version {version} for {label!r}, but the server has not applied it within "
            f"{request.timeout_s:g} s ({detail}); check its log and --model_config_file_poll_wait_seconds"
        )
    say(f"the server resolves label {label!r} of {model} to version {version}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Point a version label of models.config at a version, only once the server reports that "
            "version AVAILABLE (TF Serving refuses a label moved onto any other)."
        ),
        epilog=(
            "Canary: %(prog)s canary 2 --add-version. Promote: %(prog)s stable 2. "
            "Roll back: %(prog)s canary 1."
        ),
    )
    parser.add_argument("label", help="the version label, e.g. canary ([A-Za-z0-9_]+)")
    parser.add_argument("version", type=int, help="the version it should name")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="the ModelServerConfig file to edit"
    )
    parser.add_argument("--model", help="the model to edit (default: the file's only model)")
    server = default_server()
    parser.add_argument(
        "--server",
        default=server,
        help=f"REST URL of the server that reads the file (default: {server}, port from serving/.env)",
    )
    parser.add_argument(
        "--add-version", action="store_true", help="add the version to the specific version policy first"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for the version to be AVAILABLE and then for the label to apply "
        f"(default {DEFAULT_TIMEOUT_S:g}; 0 checks once)",
    )
    parser.add_argument(
        "--after-edit",
        metavar="COMMAND",
        help="shell command run after each edit of the file, e.g. to apply a Kubernetes ConfigMap",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not LABEL_PATTERN.fullmatch(args.label):
        parser.error(f"label {args.label!r} must match [A-Za-z0-9_]+")
    if args.version <= 0:
        parser.error(f"version must be a positive integer, got {args.version}")
    if args.timeout < 0:
        parser.error(f"--timeout must not be negative, got {args.timeout:g}")
    if not args.server:
        parser.error("--server is required: serving/.env does not set SHIXIN_REST_PORT")
    if urllib.parse.urlsplit(args.server).scheme not in ("http", "https"):
        parser.error(f"--server takes an http:// or https:// URL, got {args.server!r}")
    config = args.config.resolve()
    if not config.is_file():
        parser.error(f"--config {shlex.quote(str(args.config))} is not a file")
    try:
        model = model_name(find_model(parse(config.read_text(encoding="utf-8")), args.model))
        request = Request(
            config=config,
            model=model,
            label=args.label,
            version=args.version,
            server=Server(args.server, model),
            add_version=args.add_version,
            timeout_s=args.timeout,
            after_edit=args.after_edit,
        )
        move_label(request)
    except Refused as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
