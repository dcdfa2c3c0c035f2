# The Earshot gateway image: HTTP ingest (POST /v1/tracks) and the Telegram bot; publishes jobs.
# Build from the repository root: docker build -f deploy/docker/gateway.Dockerfile -t earshot-gateway .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=1 \
    EARSHOT_BLOB_DIR=/var/lib/earshot/blobs \
    EARSHOT_HTTP_HOST=0.0.0.0 \
    EARSHOT_HTTP_PORT=8080

WORKDIR /app
# Runtime requirements only: onnxruntime + numpy inference, no torch, nothing from train.txt or dev.txt.
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install -r requirements/runtime.txt

COPY services/ services/
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin earshot \
    && mkdir -p /var/lib/earshot/blobs \
    && chown earshot /var/lib/earshot/blobs
USER 10001

EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["python", "-m", "services.gateway", "run"]
