"""Server faults: retried when safe, typed otherwise, on time, never misplaced.

Faults are injected by loopback proxies in front of the local server (conftest.py) or
by stopping, restarting and re-versioning a real local server. Every text that does
come back is compared with what the model reads from that image alone.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shixin_client import (
    AsyncShixinClient,
    BadResponseError,
    ModelNotFoundError,
    RetryPolicy,
    ServerUnavailableError,
    ShixinClient,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
    Timeout,
)
from shixin_client._spec import DEFAULT_MODEL_NAME

#: Retries fast enough for tests; a budget that never runs dry within one test.
FAST_RETRY = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, budget=1.0)
#: How far past its deadline a call may return: scheduling on a busy 2-core machine.
SLACK_S = 0.75


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        result: Any = call()
    except ShixinError as exc:
        result = exc
    return result, time.monotonic() - start


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}", "grpc://127.0.0.1:{port}"])
@pytest.mark.parametrize("twin", ["sync", "async"])
def test_connection_refused_is_retried_then_a_connection_error(
    url: str, twin: str, captchas: list[bytes]
) -> None:
    address = url.format(port=dead_port())
    if twin == "sync":
        with ShixinClient(address, retry=FAST_RETRY, timeout=2) as client:
            error, elapsed = timed(lambda: client.recognize(captchas[0]))
    else:

        async def main() -> tuple[Any, float]:
            async with AsyncShixinClient(address, retry=FAST_RETRY, timeout=2) as client:
                start = time.monotonic()
                try:
                    return await client.recognize(captchas[0]), time.monotonic() - start
                except ShixinError as exc:
                    return exc, time.monotonic() - start

        error, elapsed = run(main())
    assert isinstance(error, ShixinConnectionError) and not isinstance(error, ShixinTimeoutError)
    assert "127.0.0.1" in str(error)
    assert elapsed < 4 * (2 + 2) + SLACK_S


@pytest.mark.parametrize("status", ["503", "429"])
def test_rest_bursts_of_503_and_429_are_retried(
    status: str, http_proxy: Any, captchas: list[bytes], oracle: Any
) -> None:
    expected = oracle.texts(captchas[:4])
    with ShixinClient(http_proxy.url, retry=FAST_RETRY) as client:
        client.get_spec()
        http_proxy.requests = 0
        http_proxy.script(status, status, status)
        assert client.recognize_many(captchas[:4]) == expected
        assert http_proxy.requests == 4
        http_proxy.script(*[status] * 10)
        with pytest.raises(ServerUnavailableError) as caught:
            client.recognize_many(captchas[:4])
        assert caught.value.http_status == int(status)
        assert http_proxy.requests == 8  # 1 + max_retries, then the typed error


@pytest.mark.parametrize("code", ["UNAVAILABLE", "RESOURCE_EXHAUSTED"])
def test_grpc_unavailable_and_resource_exhausted_are_retried(
    code: str, grpc_proxy: Any, captchas: list[bytes], oracle: Any
) -> None:
    expected = oracle.texts(captchas[:4])
    with ShixinClient(f"grpc://{grpc_proxy.target}", retry=FAST_RETRY) as client:
        client.get_spec()
        grpc_proxy.requests = 0
        grpc_proxy.script(code, code, code)
        assert client.recognize_many(captchas[:4]) == expected
        assert grpc_proxy.requests == 4
        grpc_proxy.script(*[code] * 10)
        with pytest.raises(ServerUnavailableError) as caught:
            client.recognize_many(captchas[:4])
        assert caught.value.grpc_code == code and grpc_proxy.requests == 8


def test_grpc_deadline_exceeded_from_the_server_is_a_timeout_and_not_retried(
    grpc_proxy: Any, captchas: list[bytes]
) -> None:
    with ShixinClient(f"grpc://{grpc_proxy.target}", retry=FAST_RETRY) as client:
        client.get_spec()
        grpc_proxy.requests = 0
        grpc_proxy.script("DEADLINE_EXCEEDED")
        with pytest.raises(ShixinTimeoutError):
            client.recognize(captchas[0])
        assert grpc_proxy.requests == 1


def _slow_call(kind: str, twin: str, proxies: dict[str, Any], captchas: list[bytes], fault: str) -> Any:
    """One recognize through the proxy with a 0.4 s + 0.4 s deadline; returns (result, elapsed)."""
    proxy = proxies[kind]
    url = proxy.url if kind == "rest" else f"grpc://{proxy.target}"
    timeout = Timeout(connect=0.4, read=0.4)
    if twin == "sync":
        with ShixinClient(url, retry=FAST_RETRY, timeout=timeout) as client:
            client.get_spec()
            proxy.script(fault)
            return timed(lambda: client.recognize(captchas[0]))

    async def main() -> tuple[Any, float]:
        async with AsyncShixinClient(url, retry=FAST_RETRY, timeout=timeout) as client:
            await client.get_spec()
            proxy.script(fault)
            start = time.monotonic()
            try:
                return await client.recognize(captchas[0]), time.monotonic() - start
            except ShixinError as exc:
                return exc, time.monotonic() - start

    return run(main())


@pytest.mark.parametrize("twin", ["sync", "async"])
@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_an_answer_slower_than_the_deadline_is_a_timeout_on_time(
    kind: str, twin: str, http_proxy: Any, grpc_proxy: Any, captchas: list[bytes]
) -> None:
    error, elapsed = _slow_call(kind, twin, {"rest": http_proxy, "grpc": grpc_proxy}, captchas, "slow:3")
    assert isinstance(error, ShixinTimeoutError), error
    assert elapsed <= 0.8 + SLACK_S


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_an_answer_trickling_in_still_ends_at_the_deadline(
    twin: str, http_proxy: Any, grpc_proxy: Any, captchas: list[bytes]
) -> None:
    error, elapsed = _slow_call("rest", twin, {"rest": http_proxy, "grpc": grpc_proxy}, captchas, "trickle")
    assert isinstance(error, ShixinTimeoutError), error
    assert elapsed <= 0.8 + SLACK_S


def test_a_connection_left_mid_answer_is_not_pooled_again(
    http_proxy: Any, captchas: list[bytes], oracle: Any
) -> None:
    """After a trickling answer times out, the next call reads its own answer, not the rest of that one."""
    timeout = Timeout(connect=0.4, read=0.4)
    with ShixinClient(http_proxy.url, retry=RetryPolicy(max_retries=0), timeout=timeout) as client:
        client.get_spec()
        http_proxy.script("trickle", "pass")
        with pytest.raises(ShixinTimeoutError):
            client.recognize(captchas[0])
        assert client.recognize(captchas[1]) == oracle.texts(captchas[1:2])[0]


@pytest.mark.parametrize("fault", ["truncate", "garble", "non_json", "drop_prediction", "reset"])
@pytest.mark.parametrize("twin", ["sync", "async"])
def test_rest_spoiled_answers_are_typed_errors_and_the_other_batches_survive(
    fault: str, twin: str, http_proxy: Any, captchas: list[bytes], oracle: Any
) -> None:
    expected = oracle.texts(captchas[:6])
    retry = RetryPolicy(max_retries=0)
    if twin == "sync":
        with ShixinClient(http_proxy.url, retry=retry) as client:
            client.get_spec()
            http_proxy.script("pass", fault, "pass")
            results = client.recognize_many(captchas[:6], batch_size=2, return_exceptions=True)
    else:

        async def main() -> list[Any]:
            async with AsyncShixinClient(http_proxy.url, retry=retry) as client:
                await client.get_spec()
                http_proxy.script("pass", fault, "pass")
                return await client.recognize_many(captchas[:6], batch_size=2, return_exceptions=True)

        results = run(main())
    assert results[:2] == expected[:2] and results[4:] == expected[4:]
    wanted = ShixinConnectionError if fault == "reset" else BadResponseError
    assert all(isinstance(r, wanted) for r in results[2:4]), results


@pytest.mark.parametrize("fault", ["garble", "drop_prediction"])
@pytest.mark.parametrize("twin", ["sync", "async"])
def test_grpc_spoiled_answers_are_bad_responses(
    fault: str, twin: str, grpc_proxy: Any, captchas: list[bytes], oracle: Any
) -> None:
    expected = oracle.texts(captchas[:6])
    url = f"grpc://{grpc_proxy.target}"
    if twin == "sync":
        with ShixinClient(url, retry=FAST_RETRY) as client:
            client.get_spec()
            grpc_proxy.script("pass", fault, "pass")
            results = client.recognize_many(captchas[:6], batch_size=2, return_exceptions=True)
    else:

        async def main() -> list[Any]:
            async with AsyncShixinClient(url, retry=FAST_RETRY) as client:
                await client.get_spec()
                grpc_proxy.script("pass", fault, "pass")
                return await client.recognize_many(captchas[:6], batch_size=2, return_exceptions=True)

        results = run(main())
    assert results[:2] == expected[:2] and results[4:] == expected[4:]
    assert all(isinstance(r, BadResponseError) for r in results[2:4]), results


def _copy_model(model_base: Path, target: Path) -> Path:
    shutil.copytree(model_base, target)
    return target


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_server_killed_and_restarted_mid_run(
    kind: str, model_base: Path, tmp_path: Path, captchas: list[bytes], oracle: Any
) -> None:
    from shixin_client.server.testing import running_server

    base = _copy_model(model_base, tmp_path / DEFAULT_MODEL_NAME)
    expected = oracle.texts(captchas[:4])
    results: list[Any] = []
    stop = threading.Event()
    retry = RetryPolicy(max_retries=8, initial_delay=0.1, max_delay=0.5, budget=1.0)
    with running_server(base, DEFAULT_MODEL_NAME) as first:
        ports = {"rest_port": first.server.rest_port, "grpc_port": first.server.grpc_port}
        url = first.rest_url if kind == "rest" else f"grpc://{first.grpc_target}"
        client = ShixinClient(url, retry=retry, timeout=5)
        assert client.recognize_many(captchas[:4]) == expected

        def loop() -> None:
            while not stop.is_set():
                results.append(client.recognize_many(captchas[:4], return_exceptions=True))

        worker = threading.Thread(target=loop)
        worker.start()
        time.sleep(0.5)
    before_restart = len(results)
    with running_server(base, DEFAULT_MODEL_NAME, **ports):
        served_again = len(results)
        deadline = time.monotonic() + 20
        while len(results) < served_again + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        worker.join(30)
        assert client.recognize_many(captchas[:4]) == expected
    client.close()
    assert before_restart > 0 and len(results) >= served_again + 5
    for batch in results:
        for text, want in zip(batch, expected, strict=True):
            assert text == want or isinstance(text, ShixinConnectionError), batch


def test_a_version_unloaded_mid_run(
    model_base: Path, tmp_path: Path, captchas: list[bytes], oracle: Any
) -> None:
    """Version 2 appears and 1 is unloaded: the latest keeps answering, a pin on 1 gets NOT_FOUND."""
    from shixin_client.server.testing import running_server

    base = _copy_model(model_base, tmp_path / DEFAULT_MODEL_NAME)
    expected = oracle.texts(captchas[:4])
    with running_server(base, DEFAULT_MODEL_NAME, file_system_poll_wait_seconds=0.1) as server:
        latest = ShixinClient(server.rest_url, retry=FAST_RETRY)
        pinned = latest.with_options(version=1)
        grpc_pinned = ShixinClient(f"grpc://{server.grpc_target}", version=1, retry=FAST_RETRY)
        assert pinned.recognize_many(captchas[:4]) == expected
        assert grpc_pinned.recognize_many(captchas[:4]) == expected
        shutil.copytree(base / "1", base / "2")
        latest_results: list[Any] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            latest_results.append(latest.recognize_many(captchas[:4], return_exceptions=True))
            versions = {v.version: v.state for v in latest.status().versions}
            if versions.get(2) == "AVAILABLE" and versions.get(1) != "AVAILABLE":
                break
        else:
            pytest.fail(f"version 1 was not replaced by version 2: {versions}")
        assert all(batch == expected for batch in latest_results)
        for client in (pinned, grpc_pinned):
            with pytest.raises(ModelNotFoundError):
                client.recognize_many(captchas[:4])
        assert latest.recognize_many(captchas[:4]) == expected
        latest.close()
        grpc_pinned.close()
