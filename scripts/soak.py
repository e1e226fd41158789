"""Soak and load runs of the client against a local server this script starts itself.

::

    python scripts/soak.py --minutes 5                       # soak: report every --every seconds
    python scripts/soak.py --workers 16 --requests 1000      # load: each worker sends --requests
    python scripts/soak.py --model-base models/shixin ...    # an exported model (default: untrained)

The server runs in its own process (``python -m shixin_client.server``), so the memory this
script reports is the client's alone; the client process never imports TensorFlow.
Every answer is compared with the text the same server gave for that image alone, so
a result paired with the wrong image counts as a wrong string, not a success (that
check needs a model whose texts differ between images: the untrained default reads
nearly the same text everywhere, so pass a trained model with --model-base). Exit
status 1 when any request failed or any string was wrong. Not part of CI.

tests/reliability/test_load.py drives :func:`hammer` the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file, not an installed module
    sys.path.insert(0, str(REPO))

from shixin_client import AsyncShixinClient, ShixinClient, ShixinError  # noqa: E402
from shixin_client._spec import DEFAULT_MODEL_NAME  # noqa: E402

TRANSPORTS = ("rest-sync", "rest-async", "grpc-sync", "grpc-async")
SERVER_START_TIMEOUT_S = 180.0


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Report:
    """What one run did: counts, latency percentiles (ms) and memory (MiB) after warm-up and at the end."""

    transport: str
    workers: int
    requests: int = 0
    errors: int = 0
    wrong: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    seconds: float = 0.0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_mb - self.rss_warm_mb) / self.rss_warm_mb

    def line(self) -> str:
        return (
            f"{self.transport:<10} workers={self.workers:<3} requests={self.requests:<6} "
            f"errors={self.errors:<4} wrong={self.wrong:<3} "
            f"p50={self.p50_ms:6.1f}ms p99={self.p99_ms:6.1f}ms "
            f"rate={self.requests / max(self.seconds, 1e-9):6.1f}/s "
            f"rss {self.rss_warm_mb:.0f}->{self.rss_end_mb:.0f} MiB ({100 * self.rss_growth:+.1f}%)"
        )


class _Tally:
    """Thread-safe counts for one run; the RSS "after warm-up" is taken after ``warm_after`` calls."""

    def __init__(self, report: Report, warm_after: int, expected: Sequence[str]) -> None:
        self.report = report
        self.warm_after = warm_after
        self.expected = expected
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def add(self, index: int, result: Any, seconds: float) -> None:
        with self.lock:
            self.report.requests += 1
            self.latencies.append(seconds)
            if isinstance(result, ShixinError):
                self.report.errors += 1
                name = type(result).__name__
                self.report.error_kinds[name] = self.report.error_kinds.get(name, 0) + 1
            elif result != self.expected[index]:
                self.report.wrong += 1
            if self.report.requests == self.warm_after:
                self.report.rss_warm_mb = rss_mb()

    def finish(self, seconds: float) -> Report:
        ordered = sorted(self.latencies)
        if ordered:
            self.report.p50_ms = 1000 * ordered[len(ordered) // 2]
            self.report.p99_ms = 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        self.report.seconds = seconds
        self.report.rss_end_mb = rss_mb()
        return self.report


def hammer(
    url: str,
    transport: str,
    images: Sequence[bytes],
    expected: Sequence[str],
    *,
    workers: int,
    per_worker: Optional[int] = None,
    seconds: Optional[float] = None,
    client_options: Optional[dict[str, Any]] = None,
) -> Report:
    """``workers`` threads (or tasks) share ONE client, each sending single-image calls.

    Each stops after ``per_worker`` calls or after ``seconds``, whichever comes first.
    """
    if per_worker is None and seconds is None:
        raise ValueError("give per_worker, seconds or both")
    warm_after = max(1, workers * per_worker // 10) if per_worker is not None else 10 * workers
    tally = _Tally(Report(transport, workers), warm_after, expected)
    start = time.monotonic()
    stop_at = start + seconds if seconds is not None else float("inf")

    def steps() -> Iterable[int]:
        return range(per_worker) if per_worker is not None else itertools.count()

    def index_of(number: int, step: int) -> int:
        return (number * 7 + step) % len(images)

    if transport.endswith("-sync"):
        with ShixinClient(url, **(client_options or {})) as client:

            def worker(number: int) -> None:
                for step in steps():
                    if time.monotonic() > stop_at:
                        return
                    index = index_of(number, step)
                    began = time.monotonic()
                    try:
                        result: Any = client.recognize(images[index])
                    except ShixinError as exc:
                        result = exc
                    tally.add(index, result, time.monotonic() - began)

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(worker, range(workers)))
    else:

        async def main() -> None:
            async with AsyncShixinClient(url, **(client_options or {})) as client:

                async def worker(number: int) -> None:
                    for step in steps():
                        if time.monotonic() > stop_at:
                            return
                        index = index_of(number, step)
                        began = time.monotonic()
                        try:
                            result: Any = await client.recognize(images[index])
                        except ShixinError as exc:
                            result = exc
                        tally.add(index, result, time.monotonic() - began)

                await asyncio.gather(*(worker(number) for number in range(workers)))

        asyncio.run(main())
    return tally.finish(time.monotonic() - start)


def url_for(transport: str, rest_url: str, grpc_target: str) -> str:
    return rest_url if transport.startswith("rest") else f"grpc://{grpc_target}"


class ServerProcess:
    """``python -m shixin_client.server`` on loopback ports, stopped by ``stop()`` (SIGTERM, then kill).

    Free ports are picked unless given (a restart on the same ports).
    """

    def __init__(
        self,
        model_base: Path,
        extra_flags: Sequence[str] = (),
        *,
        rest_port: Optional[int] = None,
        grpc_port: Optional[int] = None,
    ) -> None:
        self.rest_port = rest_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        command = [
            sys.executable,
            "-m",
            "shixin_client.server",
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            f"--model_name={DEFAULT_MODEL_NAME}",
            f"--model_base_path={model_base}",
            *extra_flags,
        ]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            with ShixinClient(self.rest_url, retry=0, timeout=5) as client:
                deadline = time.monotonic() + SERVER_START_TIMEOUT_S
                while not self._ready(client):
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start: {self._stderr()}")
                    time.sleep(0.5)
        except BaseException:
            self.stop()
            raise

    def _ready(self, client: ShixinClient) -> bool:
        try:
            return client.ready()
        except ShixinError:
            return False

    def _stderr(self) -> str:
        self.stop()
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def export_untrained(target: Path) -> Path:
    """An untrained ``default`` model, exported in a child process so this one never loads TensorFlow."""
    code = (
        "import sys, keras\n"
        "from training.model import build_model\n"
        "from export.saved_model import export_model\n"
        "keras.utils.set_random_seed(1)\n"
        "export_model(build_model('default'), sys.argv[1], sys.argv[2], version=1)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(target), DEFAULT_MODEL_NAME], cwd=REPO, check=True)
    return target / DEFAULT_MODEL_NAME


def sample_images(count: int) -> list[bytes]:
    from training.generator import generate, png_bytes

    return [png_bytes(captcha) for captcha in generate(seed=2026, count=count)]


def truth(url: str, images: Sequence[bytes]) -> list[str]:
    """The text the server gives each image on its own: the answer every later call must match."""
    with ShixinClient(url) as client:
        return [client.recognize(image) for image in images]


def soak(
    server: ServerProcess,
    images: Sequence[bytes],
    minutes: float,
    every: float,
    workers: int,
    report: Callable[[dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """Rotate through the four transports in slices of ``every`` seconds until time is up."""
    expected = {
        kind: truth(url_for(kind, server.rest_url, server.grpc_target), images) for kind in TRANSPORTS
    }
    rows: list[dict[str, Any]] = []
    start = time.monotonic()
    slice_index = 0
    while time.monotonic() - start < minutes * 60:
        kind = TRANSPORTS[slice_index % len(TRANSPORTS)]
        url = url_for(kind, server.rest_url, server.grpc_target)
        sliced = hammer(url, kind, images, expected[kind], workers=workers, seconds=every)
        row = {"t_s": round(time.monotonic() - start, 1), **asdict(sliced)}
        rows.append(row)
        report(row)
        slice_index += 1
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-base", type=Path, help="exported model base path (default: export an untrained one)"
    )
    parser.add_argument("--minutes", type=float, help="soak for this long, rotating through the transports")
    parser.add_argument("--every", type=float, default=30.0, help="soak: seconds per reported slice")
    parser.add_argument(
        "--workers", type=int, default=8, help="threads (sync) or tasks (async) sharing one client"
    )
    parser.add_argument("--requests", type=int, help="load: calls per worker on each transport")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="load: comma-separated subset")
    parser.add_argument("--images", type=int, default=32, help="distinct captchas to cycle through")
    parser.add_argument("--json", type=Path, help="also write every row to this JSON file")
    args = parser.parse_args(argv)
    if (args.minutes is None) == (args.requests is None):
        parser.error("give --minutes (soak) or --requests (load), not both")
    images = sample_images(args.images)
    with tempfile.TemporaryDirectory() as scratch:
        model_base = args.model_base or export_untrained(Path(scratch))
        with ServerProcess(model_base) as server:
            print(f"server pid {server.process.pid}; client rss {rss_mb():.0f} MiB", flush=True)
            if args.minutes is not None:
                rows = soak(server, images, args.minutes, args.every, args.workers, _print_row)
            else:
                rows = []
                for kind in args.transports.split(","):
                    url = url_for(kind, server.rest_url, server.grpc_target)
                    result = hammer(
                        url, kind, images, truth(url, images), workers=args.workers, per_worker=args.requests
                    )
                    print(result.line(), flush=True)
                    rows.append(asdict(result))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    failed = sum(row["errors"] + row["wrong"] for row in rows)
    print(f"total requests={sum(row['requests'] for row in rows)} errors+wrong={failed}", flush=True)
    return 1 if failed else 0


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"t={row['t_s']:7.1f}s {row['transport']:<10} requests={row['requests']:<6} "
        f"errors={row['errors']:<3} wrong={row['wrong']:<3} p50={row['p50_ms']:6.1f}ms "
        f"p99={row['p99_ms']:6.1f}ms rss={row['rss_end_mb']:.0f}MiB",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
