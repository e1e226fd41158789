"""A server in a background thread for tests: ``with running_server(path, "shixin") as srv: ...``.

It binds free ports on 127.0.0.1 and returns once the models are loaded and both APIs
listen, so tests can call ``srv.rest_url`` / ``srv.grpc_target`` at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shixin_client._spec import DEFAULT_MODEL_NAME

from .server import ModelServer, ServerOptions, model_config

LOOPBACK = "127.0.0.1"
_START_TIMEOUT_S = 120.0
TEST_LOAD_RETRY_INTERVAL_S = 0.05


class RunningServer:
    """A started server on its own event loop thread; ``stop()`` is idempotent."""

    def __init__(self, options: ServerOptions) -> None:
        self.server = ModelServer(options)
        self._loop = asyncio.new_event_loop()
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="shixin-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise TimeoutError(f"the test server did not start within {_START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop_requested = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            await self.server.stop()
            return
        finally:
            self._ready.set()
        await self._stop_requested.wait()
        await self.server.stop()

    @property
    def rest_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{LOOPBACK}:{self.server.grpc_port}"

    def stop(self) -> None:
        if self._thread.is_alive() and self._stop_requested is not None:
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        self._thread.join()


@contextmanager
def running_server(
    model_base_path: str | Path | None = None, model_name: str = DEFAULT_MODEL_NAME, **opts: Any
) -> Iterator[RunningServer]:
    """Serve one model (or ``models=[ModelConfig, ...]``) on free loopback REST and gRPC ports.

    Other keyword arguments are :class:`ServerOptions` fields, e.g. ``batching=BatchingOptions(...)``,
    ``prometheus_path="/monitoring/prometheus/metrics"`` or ``file_system_poll_wait_seconds=0.2``.
    A failed load is retried as often as TF Serving retries it, but ``TEST_LOAD_RETRY_INTERVAL_S``
    apart instead of a minute, so a test of a broken model ends in seconds.
    """
    if "models" not in opts:
        if model_base_path is None:
            raise ValueError("running_server needs model_base_path or models=[...]")
        opts["models"] = [model_config(model_name, str(model_base_path))]
    defaults = {
        "host": LOOPBACK,
        "grpc_port": 0,
        "rest_port": 0,
        "load_retry_interval_s": TEST_LOAD_RETRY_INTERVAL_S,
    }
    options = ServerOptions(**{**defaults, **opts})
    handle = RunningServer(options)
    try:
        yield handle
    finally:
        handle.stop()
