"""${{ values.name }}: ${{ values.description or "a Python HTTP service" }}."""
