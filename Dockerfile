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
COPY shared ./shared
COPY services ./services
COPY golive ./golive
RUN /opt/golive/bin/pip install .

# --- runtime: the environment, the plans, an unprivileged user ------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/golive golive
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
USER golive
EXPOSE 9100
ENTRYPOINT ["golive"]
CMD ["--help"]
