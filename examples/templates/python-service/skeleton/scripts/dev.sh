#!/bin/sh
# Run ${{ values.name }} locally with auto-reload.
exec .venv/bin/python -m ${{ values.package }}
