# The registry's server: `registry serve` on 0.0.0.0:8080, its data directory a volume at /data.
#   docker build -t pypi-registry .
#   docker run -d --name registry -p 8080:8080 -v registry-data:/data --read-only pypi-registry
# Configured by the same REGISTRY_* (and AWS_*) variables as outside a container (README.md,
# "Running it in a container").
FROM python:3.12-slim

# git itself, besides pygit2: `registry verify` fscks the ledger with it, the background repack folds
# the ledger's packs with it, and witnesses and replicas fetch the ledger through `git http-backend`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

# The dependencies first, at the pinned versions, in a layer of their own: a change to the source
# rebuilds only the layer below, not this one.
COPY pyproject.toml /src/
COPY .ci/constraints.txt /src/.ci/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /src/requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        -c /src/.ci/constraints.txt -r /src/requirements.txt

COPY README.md /src/
COPY registry /src/registry
COPY pipelines /src/pipelines
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore --no-deps \
        -c /src/.ci/constraints.txt /src \
    && rm -rf /src

# A fixed uid, so a host directory given as the volume can be owned by it (chown 10001 DIR).
RUN groupadd --system --gid 10001 registry \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin registry \
    && mkdir /data && chown 10001:10001 /data && chmod 0700 /data

# Everything the registry writes is in /data (ledger, keys, blobs or the bucket's staging, caches):
# the root filesystem can be read-only. Python writes no bytecode (pip compiled it at install).
ENV REGISTRY_DATA=/data \
    REGISTRY_HOST=0.0.0.0 \
    REGISTRY_PORT=8080 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME /data
WORKDIR /data
USER 10001:10001
EXPOSE 8080

# No curl in the slim image: Python's urllib. A status other than 200 (or none in 5 s) is unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_/health' % os.environ.get('REGISTRY_PORT', '8080'), timeout=4)"

# Exec form: the server is PID 1 and hears SIGTERM itself (it finishes acknowledged uploads, then exits).
STOPSIGNAL SIGTERM
CMD ["registry", "serve"]
