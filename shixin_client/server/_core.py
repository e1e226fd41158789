"""What the REST and gRPC front ends share: model lookup, running, timing and in-flight tracking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor
from contextlib import asynccontextmanager, contextmanager

import numpy as np
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from ._inference import Runner, Signature
from ._metrics import Metrics
from ._repository import ModelRepository, StatusRow
from ._status import ServingError, invalid_argument


class ServingCore:
    def __init__(
        self,
        repository: ModelRepository,
        runner: Runner,
        metrics: Metrics,
        executor: Executor,
        allow_unavailable_labels: bool = False,
    ) -> None:
        self.repository = repository
        self.runner = runner
        self.metrics = metrics
        self._executor = executor
        self._allow_unavailable_labels = allow_unavailable_labels
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def run(
        self, signature: Signature, inputs: dict[str, np.ndarray], timeout_s: float | None
    ) -> dict[str, np.ndarray]:
        try:
            return await asyncio.wait_for(self.runner.run(signature, inputs), timeout_s)
        except asyncio.TimeoutError:
            raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None

    async def poll(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.repository.poll)

    async def initial_load(self) -> None:
        """Poll until every aspired version is AVAILABLE or has used up its load retries.

        TF Serving opens its ports only once this initial load is over, and exits when a
        configured model did not become available (§3.3); the same error is raised here.
        """
        await self.poll()
        while (wait_s := self.repository.next_retry_in()) is not None:
            await asyncio.sleep(wait_s)
            await self.poll()
        failed = self.repository.unavailable_models()
        if failed:
            raise ServingError(
                "UNKNOWN", "Some models did not become available: {" + ", ".join(failed) + ", }"
            )

    async def reload(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        """Replace the served models (a reloaded config file or HandleReloadConfigRequest)."""
        # ServerCore applies the label map before it adds or loads the new config's models,
        # so a label moved onto a version that is not AVAILABLE fails the whole reload (§3.3).
        self.repository.apply_labels(configs, self._allow_unavailable_labels)
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.repository.replace_configs, configs
            )
        except ValueError as exc:
            raise invalid_argument(str(exc)) from None

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Counts a request so that shutdown can wait for it to finish."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    @asynccontextmanager
    async def measured(self, model_name: str, api: str, entrypoint: str) -> AsyncIterator[None]:
        """Records the request's count and latency under its final status code."""
        started = time.perf_counter()
        code = "OK"
        try:
            yield
        except ServingError as exc:
            code = exc.code
            raise
        except BaseException:
            code = "INTERNAL"
            raise
        finally:
            self.metrics.record(model_name, api, entrypoint, code, time.perf_counter() - started)


def status_response(rows: list[StatusRow]) -> get_model_status_pb2.GetModelStatusResponse:
    """The status proto both wires print (§1.7, §2)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    codes = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"].message_type
    code_enum = codes.fields_by_name["error_code"].enum_type
    for version, state, code, message in rows:
        entry = response.model_version_status.add(
            version=version, state=get_model_status_pb2.ModelVersionStatus.State.Value(state)
        )
        entry.status.error_code = code_enum.values_by_name[code].number
        entry.status.error_message = message
    return response
