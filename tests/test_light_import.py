"""Importing the SDK and its CLI, and building a REST client, pulls in no heavy or optional stack.

Each check runs in a fresh interpreter, so modules other tests imported cannot hide a leak.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("tensorflow", "keras", "tensorflow_serving", "training", "export", "shixin_client.server", "grpc")


def loaded_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in FORBIDDEN]


@pytest.mark.parametrize(
    "code",
    [
        "import shixin_client, shixin_client.cli",
        "import shixin_client\nc = shixin_client.ShixinClient('http://127.0.0.1:1')\nc.close()",
        "import shixin_client\nshixin_client.AsyncShixinClient('https://127.0.0.1:1')",
    ],
)
def test_no_heavy_imports(code: str) -> None:
    assert heavy(loaded_after(code)) == []


def test_plain_import_does_not_load_the_http_libraries() -> None:
    """urllib3 and httpx are imported when a REST client is built, not by ``import shixin_client``."""
    modules = loaded_after("import shixin_client, shixin_client.cli")
    assert not [name for name in modules if name.split(".")[0] in ("urllib3", "httpx", "ai_edge_litert")]


def test_the_sync_rest_client_does_not_need_requests() -> None:
    """It talks urllib3 directly; requests is no longer a dependency."""
    modules = loaded_after("import shixin_client\nshixin_client.ShixinClient('http://127.0.0.1:1').close()")
    assert "urllib3" in {name.split(".")[0] for name in modules}
    assert not [name for name in modules if name.split(".")[0] == "requests"]


def test_the_forbidden_check_can_fail() -> None:
    """The detector itself sees a leak when there is one."""
    assert "json" not in FORBIDDEN and heavy(["grpc._channel", "grpcio_tools", "numpy"]) == ["grpc._channel"]
