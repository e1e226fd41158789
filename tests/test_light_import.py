"""Importing the SDK and its CLI, and building a REST client, pulls in no heavy or optional stack.

Each check runs in a fresh interpreter, so modules other tests imported cannot hide a leak.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = (
    "tensorflow",
    "keras",
    "tensorflow_serving",
    "training",
    "export",
    "shixin_client.server",
    "grpc",
)


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


@pytest.mark.parametrize(
    "code",
    [
        "import shixin_client, shixin_client.cli",
        "import glob, shixin_client\n"
        f"image = sorted(glob.glob({str(REPO / 'examples' / 'captchas' / '*.png')!r}))[0]\n"
        "print(shixin_client.ShixinClient.local(min_confidence=0).recognize(image))",
    ],
)
def test_sync_use_does_not_load_asyncio_or_email(code: str) -> None:
    """asyncio (with ssl, socket and subprocess) is about a fifth of a cold start and of its
    memory; only the async client and the network transports need it."""
    loaded = {name.split(".")[0] for name in loaded_after(code)}
    assert not loaded & {"asyncio", "email", "ssl"}


def test_the_sync_rest_client_does_not_need_requests() -> None:
    """It talks urllib3 directly; requests is no longer a dependency."""
    modules = loaded_after("import shixin_client\nshixin_client.ShixinClient('http://127.0.0.1:1').close()")
    assert "urllib3" in {name.split(".")[0] for name in modules}
    assert not [name for name in modules if name.split(".")[0] == "requests"]


def test_the_forbidden_check_can_fail() -> None:
    """The detector itself sees a leak when there is one."""
    assert "json" not in FORBIDDEN and heavy(["grpc._channel", "grpcio_tools", "numpy"]) == ["grpc._channel"]


#: What the local server and export may import from the SDK besides the public package:
#: TF Serving's wire tables (public) and the two modules of facts shared on purpose.
SHARED_MODULES = ("shixin_client", "shixin_client.protocol", "shixin_client._spec", "shixin_client._images")


def sdk_imports(path: Path, package: str) -> set[str]:
    """The SDK modules a file imports, relative imports resolved against ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "shixin_client")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{parent}.{node.module}" if node.module else parent
            else:
                module = node.module or ""
            if module.split(".")[0] == "shixin_client":
                found.add(module)
    return found


@pytest.mark.parametrize(
    ("folder", "package"), [("shixin_client/server", "shixin_client.server"), ("export", "export")]
)
def test_the_server_and_export_use_only_public_or_shared_sdk_modules(folder: str, package: str) -> None:
    files = sorted((REPO / folder).glob("*.py"))
    assert files
    used = {module: path.name for path in files for module in sdk_imports(path, package)}
    private = {
        module: name
        for module, name in used.items()
        if module not in SHARED_MODULES and not module.startswith("shixin_client.server")
    }
    assert private == {}


def test_the_import_check_sees_private_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("from shixin_client._transports import local\nfrom .._client import x\n")
    assert sdk_imports(source, "shixin_client.server") == {
        "shixin_client._transports",
        "shixin_client._client",
    }


def test_no_sdk_module_below_the_transports_imports_them() -> None:
    """Only the client (and the package's public face) sits above the transports."""
    above = {"__init__.py", "_client.py", "cli.py", "__main__.py"}
    below = [
        path
        for path in sorted((REPO / "shixin_client").glob("*.py"))
        + sorted((REPO / "shixin_client" / "_decode").glob("*.py"))
        if path.name not in above
    ]
    assert len(below) > 10
    for path in below:
        package = "shixin_client._decode" if path.parent.name == "_decode" else "shixin_client"
        imported = sdk_imports(path, package)
        assert not [m for m in imported if m.startswith("shixin_client._transports")], path.name
