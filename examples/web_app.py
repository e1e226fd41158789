"""A tiny aiohttp web service: ``POST /recognize`` with a captcha image, get ``{"text": ...}`` back.

One :class:`shixin_client.AsyncShixinClient` is opened when the app starts and shared
by every request (its connection pool and the model's spec are reused), then closed
when the app stops (Ctrl+C or SIGTERM). A bad upload is a 400 naming the problem; a server failure a 502.

Run, with a model served on localhost (e.g. ``shixin serve --model_name=shixin
--model_base_path=$PWD/models/shixin --port=8500 --rest_api_port=8501``) and
``pip install aiohttp "shixin-client[async]"``::

    python examples/web_app.py [--server http://localhost:8501] [--host 127.0.0.1] [--port 8080]
    curl -F image=@examples/captchas/bbx2_2a18b75a512771fd9e9bee8173063268.png http://127.0.0.1:8080/recognize
    curl --data-binary @examples/captchas/bbx2_2a18b75a512771fd9e9bee8173063268.png http://127.0.0.1:8080/recognize

The image is the multipart field ``image`` or the whole request body. The model server
URL comes from ``--server``, else ``$SHIXIN_SERVER``, else http://localhost:8501.
``--port 0`` picks a free port; the first line printed is the endpoint's URL.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from shixin_client import AsyncShixinClient, InvalidInputError, ShixinError, server_from_env

CLIENT = web.AppKey("client", AsyncShixinClient)


async def recognize(request: web.Request) -> web.Response:
    if request.content_type.startswith("multipart/"):
        upload = (await request.post()).get("image")
        if not isinstance(upload, web.FileField):
            return web.json_response(
                {"error": "send the image as the multipart file field 'image'"}, status=400
            )
        data = upload.file.read()
    else:
        data = await request.read()
    try:
        text = await request.app[CLIENT].recognize(data)
    except InvalidInputError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except ShixinError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response({"text": text})


def make_app(server: str) -> web.Application:
    async def shared_client(app: web.Application) -> AsyncIterator[None]:
        async with AsyncShixinClient(server) as client:
            app[CLIENT] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(shared_client)
    app.router.add_post("/recognize", recognize)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM (docker stop, Kubernetes) or SIGINT (Ctrl+C), then close cleanly.

    The loop's own handlers catch both, as aiohttp's run_app does: a process started in the
    background by a non-interactive shell inherits SIGINT as ignored, and Python's default
    Ctrl+C handling would then never stop it.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        print(f"http://{bound_host}:{bound_port}/recognize", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve POST /recognize on top of a shixin model server.")
    parser.add_argument("--server", default=server_from_env() or "http://localhost")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    asyncio.run(serve(make_app(args.server), args.host, args.port))


if __name__ == "__main__":
    main()
