# The README's two promises: `make run` and `make test`, on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test postgres bench clean

$(BIN)/pavedroad: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# Serve Slack when SLACK_BOT_TOKEN is set; otherwise talk to the bot here, on the demo catalog.
run: $(BIN)/pavedroad
	@if [ -n "$$SLACK_BOT_TOKEN" ]; then $(BIN)/pavedroad serve; else $(BIN)/pavedroad shell; fi

# The tests start their own PostgreSQL server from the machine's packages; install them if missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		echo "installing PostgreSQL from the machine's packages"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

test: $(BIN)/pavedroad postgres
	PAVEDROAD_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest -q

bench: $(BIN)/pavedroad
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pavedroad build *.egg-info
