# syntax=docker/dockerfile:1
# The genesis image: `genesis serve` by default; the worker runs from the same image with
# another command. Build it with `nox -s build` (docker buildx or podman), which first fills
# dist/wheelhouse with wheels for the base image's Python: nothing is fetched during the
# build, so it works where the build cannot reach or trust a package index.

# Pinned to a patch release; pin the digest too (tag@sha256:...) where a registry is reachable
# and a bot keeps it fresh. Any Debian-based image with python3 and python3-venv works here:
# genesis.pipeline.build makes one with debootstrap for machines with no registry at all.
ARG BASE_IMAGE=python:3.12.10-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG VERSION
COPY dist/wheelhouse/ /wheelhouse/
# --no-index: exactly the wheels the SBOM lists. pip and setuptools leave the venv afterwards,
# as nothing at run time installs packages and they are the usual scanner findings.
RUN test -n "${VERSION}" \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --no-index --find-links /wheelhouse \
        "genesis[redis]==${VERSION}" \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools \
    && /opt/venv/bin/genesis --version

FROM ${BASE_IMAGE}
ARG VERSION
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="genesis" \
      org.opencontainers.image.description="genesis: an OpenAI-compatible chat service (genesis serve) and its worker, delivered by a metric-gated pipeline" \
      org.opencontainers.image.source="https://github.com/genesis-delivery/genesis" \
      org.opencontainers.image.url="https://github.com/genesis-delivery/genesis" \
      org.opencontainers.image.documentation="https://github.com/genesis-delivery/genesis/tree/main/docs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# A fixed numeric UID, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 genesis \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin genesis
COPY --from=builder /opt/venv /opt/venv

# Everything the process writes goes to /tmp (a tmpfs or emptyDir under a read-only root):
# HOME and TMPDIR point there and Python writes no bytecode (pip compiled it at install).
# Inside a container both ports listen on every interface; the chart and the NetworkPolicy
# decide who reaches them. GENESIS_REVISION feeds genesis_build_info.
ENV PATH="/opt/venv/bin:${PATH}" \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GENESIS_HOST=0.0.0.0 \
    GENESIS_PORT=8000 \
    GENESIS_METRICS_HOST=0.0.0.0 \
    GENESIS_METRICS_PORT=9464 \
    GENESIS_REVISION=${REVISION}
# An empty, root-owned working directory: genesis reads .env files from here, so none can
# appear by accident.
WORKDIR /app
USER 10001:10001
EXPOSE 8000 9464

# The slim image has no curl: the interpreter that runs the service does the check.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('GENESIS_PORT', '8000'), timeout=2)"]

# Exec form: genesis is PID 1 and gets SIGTERM itself (it drains, then exits 0).
ENTRYPOINT ["genesis"]
CMD ["serve"]
