"""Allow `python -m bot`."""
from bot.cli import main

if __name__ == "__main__":  # not when a worker process (catalog parsing) imports it
    raise SystemExit(main())
