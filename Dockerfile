# syntax=docker/dockerfile:1
# One image for every golive process: the five services (`golive serve NAME`), the demo apps
# (`python -m golive.demo.app`) and the CLI. docker-compose.yml builds it (target runtime).

ARG PYTHON_VERSION=3.11

# --- build: the project and its dependencies into a virtual environment ---------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/golive
WORKDIR /src
COPY pyproject.toml README.md ./
# the dependencies first, in their own layer: a change to golive's source does not reinstall them. Lean: golive's
# dependencies, the `reports` extra (the coordinator draws each run's chart and badges) and the `tracing` extra
# (GOLIVE_OTEL_EXPORTER=otlp turns on export to a collector, off by default); never the `stack` extra,
# whose embedded nats-server, Envoy and PostgreSQL (~160 MB) the image does not run (compose runs the official images)
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\\n'.join(p['dependencies'] + p['optional-dependencies']['reports'] + p['optional-dependencies']['tracing']))" > /tmp/dependencies.txt \
    && /opt/golive/bin/pip install -r /tmp/dependencies.txt
# golive/ holds the symlinks golive/shared -> ../shared and golive/services -> ../services: the wheel carries them
# as golive.shared and golive.services
COPY shared ./shared
COPY services ./services
COPY golive ./golive
RUN /opt/golive/bin/pip install --no-deps .

# --- runtime: the environment, the plans, an unprivileged user ------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 golive \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /var/lib/golive golive
COPY --from=build /opt/golive /opt/golive
# the plans golive ships (package data in golive/plans/) also where `docker compose run --rm cli run plans/...` looks
COPY golive/plans/*.yaml /app/plans/
# metrics on every interface of the container, so Prometheus (another container) can scrape them
ENV PATH=/opt/golive/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GOLIVE_STATE_DIR=/var/lib/golive/state \
    GOLIVE_ARTIFACTS_DIR=/var/lib/golive/artifacts \
    GOLIVE_METRICS_HOST=0.0.0.0
WORKDIR /app
# numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd
USER 10001:10001
EXPOSE 9100
# a service is healthy when its metrics endpoint answers (compose and Kubernetes probe the same endpoint; the
# demo apps and the CLI, which serve no metrics, override or disable it in docker-compose.yml)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GOLIVE_METRICS_PORT', '9100') + '/metrics', timeout=2)"]
ENTRYPOINT ["golive"]
CMD ["--help"]
