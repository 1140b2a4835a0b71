# Small, non-root image of pavedroad. Build: docker build -t pavedroad .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY commands commands
COPY integrations integrations
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# git: the golden path's embedded default publishes to bare repositories under /data/git.
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 pavedroad && mkdir /data && chown pavedroad /data
COPY --from=build /install /usr/local
COPY examples /app/examples
WORKDIR /app
USER pavedroad
ENV PAVEDROAD_DATA_DIR=/data \
    PAVEDROAD_CATALOG=/app/examples/catalog/all.yaml \
    PORT=3000 \
    PYTHONUNBUFFERED=1
EXPOSE 3000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"3000\")}/healthz', timeout=2)"
CMD ["pavedroad", "serve"]
