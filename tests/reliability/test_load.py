"""Load (issue 7, part 3): many workers share one client; nothing fails, nothing is misplaced.

Each call sends one image and its text must be what the model reads from that image
alone. The full run (16 workers x 1,000 calls per transport) is marked ``load`` and
skipped by default; ``pytest -m load tests/reliability/test_load.py -s`` runs it. Its
server runs in its own process (scripts/soak.py's ServerProcess), so the memory
measured, after warm-up and at the end, is the client's alone. The small CI variant
runs the same code against the package's in-process server, to stay fast.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SOAK_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"
#: Client memory may grow this much between warm-up and the end of a run.
MAX_RSS_GROWTH = 0.10


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
