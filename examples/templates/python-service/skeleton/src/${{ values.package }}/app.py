"""The HTTP application: a health check and a greeting."""
from aiohttp import web


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "${{ values.name }}"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app
