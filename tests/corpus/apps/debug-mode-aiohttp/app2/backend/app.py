"""Status board: an aiohttp service that reports the state of the build machines."""

import os

from aiohttp import web

MACHINES = {"alpha": "idle", "beta": "building"}


async def status(request: web.Request) -> web.Response:
    return web.json_response(MACHINES)


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/api/status", status)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8080)))
