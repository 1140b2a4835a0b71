"""Serve ${{ values.name }} on port 8080."""
from aiohttp import web

from ${{ values.package }}.app import create_app

web.run_app(create_app(), port=8080)
