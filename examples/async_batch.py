"""Recognise a folder concurrently with :class:`shixin_client.AsyncShixinClient`.

Every file is its own request, all in flight together (at most ``--concurrency`` at a
time) on one shared client; ``asyncio.gather`` keeps the answers in file order. Each
request's failure is caught with its file, so one bad file costs only its own answer
(a bare ``gather`` would raise the first error and drop every other result). When
latency per image does not matter, ``await client.recognize_many(files,
return_exceptions=True)`` does the same in as few batched requests as possible.

Run, with a model served on localhost (e.g. ``shixin serve --model_name=shixin
--model_base_path=$PWD/models/shixin --port=8500 --rest_api_port=8501``)::

    python examples/async_batch.py [--server http://localhost:8501] [--concurrency 8] [FOLDER]

Needs the ``[async]`` extra for REST (httpx) or ``[grpc]`` for a grpc:// URL. The URL
comes from ``--server``, else ``$SHIXIN_SERVER``, else http://localhost:8501. Prints
one ``file<TAB>text`` line per captcha in FOLDER (default: examples/captchas); failures
go to stderr, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shixin_client import IMAGE_SUFFIXES, AsyncShixinClient, ShixinError, server_from_env

CAPTCHAS = Path(__file__).resolve().parent / "captchas"


async def recognize_all(server: str, files: list[Path], concurrency: int) -> list[str | ShixinError]:
    """The text of each file, or the error that stands for it, in file order."""
    limit = asyncio.Semaphore(concurrency)
    async with AsyncShixinClient(server) as client:
        await client.get_spec()  # ask the model to describe itself once, not once per file

        async def one(path: Path) -> str | ShixinError:
            async with limit:
                try:
                    return await client.recognize(path)
                except ShixinError as exc:  # this file's failure only
                    return exc

        return await asyncio.gather(*(one(path) for path in files))


def main() -> int:
    parser = argparse.ArgumentParser(description="Recognise a folder of captchas concurrently.")
    parser.add_argument("--server", default=server_from_env() or "http://localhost")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("folder", nargs="?", type=Path, default=CAPTCHAS)
    args = parser.parse_args()
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    results = asyncio.run(recognize_all(args.server, files, args.concurrency))
    for path, result in zip(files, results, strict=True):
        if isinstance(result, ShixinError):
            print(f"{path.name}: {result}", file=sys.stderr)
        else:
            print(f"{path.name}\t{result}")
    return 1 if any(isinstance(result, ShixinError) for result in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ShixinError as exc:  # server unreachable, model not found, ...: one line, not a traceback
        sys.exit(f"error: {exc}")
