"""The bot's own observability: Prometheus metrics (`metrics.py`), structured logs with a request
id and no secrets (`logs.py`), and optional OpenTelemetry traces (`tracing.py`)."""
