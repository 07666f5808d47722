# The pipeline's image: the `esr` command and the stream worker. Built by docker-compose.yml.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY esr esr
COPY connectors connectors
COPY streams streams
COPY schemas schemas
RUN pip install --no-cache-dir . && useradd --system --home /app esr && mkdir -p /inbox /app/var && chown esr /inbox /app/var
USER esr
ENV ESR_DATA_DIR=/app/var
ENTRYPOINT ["esr"]
CMD ["--help"]
