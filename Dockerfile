# One image for every Assay process (api, worker, sweeper, migrate); the command picks the role.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Dependencies first, pinned by constraints.txt (the versions CI tests), so code changes reuse this layer.
COPY pyproject.toml README.md constraints.txt ./
COPY api api
COPY workers workers
COPY models models
COPY services services
COPY llmcalls llmcalls
COPY fakellm fakellm
COPY cli cli
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --create-home --home-dir /home/assay assay

USER assay
EXPOSE 8000 9101
# The API's readiness (database at the newest migration, Redis answering); the compose file and the
# Kubernetes manifests give the worker its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["assay", "api", "--host", "0.0.0.0", "--port", "8000"]
