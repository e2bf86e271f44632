# One image for every golive service; the command picks the service: `golive serve migrator`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY golive ./golive
RUN pip install --no-cache-dir . && useradd --system golive
USER golive
ENTRYPOINT ["golive"]
