"""Load: many workers share one client; nothing fails, nothing is misplaced.

Each call sends one image and its text must be what the model reads from that image
alone. The full run (16 workers x 1,000 calls per transport) is marked ``load`` and
skipped by default; ``pytest -m load tests/reliability/test_load.py -s`` runs it. Its
server runs in its own process (scripts/soak.py's ServerProcess), so the memory
measured, after warm-up and at the end, is the client's alone. The small CI variant
runs the same code against the package's in-process server, to stay fast.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shixin_client import RetryPolicy, ShixinClient, ShixinConnectionError, ShixinError

SOAK_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"
#: Client memory may grow this much between warm-up and the end of a run.
MAX_RSS_GROWTH = 0.10
#: After a restart, calls started this long after the server is back must all succeed.
SETTLE_S = 2.0


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_shixin_soak", SOAK_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


soak = _soak_module()


@pytest.fixture(scope="module")
def own_process_server(model_base: Path) -> Iterator[Any]:
    with soak.ServerProcess(model_base) as server:
        yield server


def _run(
    server: Any, transport: str, captchas: list[bytes], oracle: Any, workers: int, per_worker: int
) -> Any:
    url = soak.url_for(transport, server.rest_url, server.grpc_target)
    report = soak.hammer(
        url, transport, captchas, oracle.texts(captchas), workers=workers, per_worker=per_worker
    )
    print(report.line())
    assert report.requests == workers * per_worker
    assert (report.errors, report.wrong) == (0, 0), report.error_kinds
    assert report.rss_growth < MAX_RSS_GROWTH, report.line()
    return report


@pytest.mark.parametrize("transport", soak.TRANSPORTS)
def test_small_load_shared_client(server: Any, transport: str, captchas: list[bytes], oracle: Any) -> None:
    _run(server, transport, captchas, oracle, workers=4, per_worker=25)


@pytest.mark.slow
@pytest.mark.load
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("transport", soak.TRANSPORTS)
def test_full_load_shared_client(
    own_process_server: Any, transport: str, captchas: list[bytes], oracle: Any
) -> None:
    _run(own_process_server, transport, captchas, oracle, workers=16, per_worker=1000)


@pytest.mark.slow
def test_shared_clients_survive_a_sigkilled_server(
    model_base: Path, captchas: list[bytes], oracle: Any
) -> None:
    """Workers keep calling while the server process is killed (-9) and restarted on its ports.

    Calls in the gap may fail, as ShixinConnectionError and nothing else; every text that
    comes back is the image's own, and once the new process is up every call succeeds.
    """
    expected = oracle.texts(captchas)
    retry = RetryPolicy(max_retries=4, initial_delay=0.1, max_delay=0.5, budget=1.0)
    first = soak.ServerProcess(model_base)
    clients = [
        ShixinClient(first.rest_url, retry=retry, timeout=5),
        ShixinClient(f"grpc://{first.grpc_target}", retry=retry, timeout=5),
    ]
    results: list[tuple[float, int, Any]] = []  # (when the call started, image, text or error)
    stop = threading.Event()

    def worker(client: ShixinClient, number: int) -> None:
        step = 0
        while not stop.is_set():
            index = (number * 5 + step) % len(captchas)
            started = time.monotonic()
            try:
                results.append((started, index, client.recognize(captchas[index])))
            except ShixinError as exc:
                results.append((started, index, exc))
            step += 1

    threads = [threading.Thread(target=worker, args=(c, n)) for n, c in enumerate(clients * 2)]
    second = None
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        killed_at = len(results)
        second = soak.ServerProcess(model_base, rest_port=first.rest_port, grpc_port=first.grpc_port)
        restarted_at, back_at = len(results), time.monotonic()
        time.sleep(3.0)
        stop.set()
        for thread in threads:
            thread.join(30)
        for client in clients:
            assert client.recognize_many(captchas[:4]) == expected[:4]
            client.close()
    finally:
        stop.set()
        if second is not None:
            second.stop()
        first.stop()
    failures = [r for _, _, r in results if isinstance(r, ShixinError)]
    assert all(isinstance(f, ShixinConnectionError) for f in failures), {type(f).__name__ for f in failures}
    assert all(text == expected[i] for _, i, text in results if isinstance(text, str))
    assert killed_at > 0 and len(results) > restarted_at + 10
    # A call started once the server is back succeeds (calls still retrying into it may not).
    settled = back_at + SETTLE_S
    late = [text for started, _, text in results if started > settled and not isinstance(text, str)]
    assert not late, late[:3]
