# The pipeline's image: the `esr` command and the stream worker. Built by docker-compose.yml.
# Two stages: the native Avro codec (esr/codec/_native.pyx) needs a C compiler, which only the build stage
# has; the image gets the built wheel.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY esr esr
COPY connectors connectors
COPY streams streams
COPY schemas schemas
RUN find esr \( -name '*.so' -o -name '_native.c' \) -delete && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && python -c "import esr.codec._native" \
    && useradd --system --home /app esr && mkdir -p /inbox /app/var && chown esr /inbox /app/var
USER esr
ENV ESR_DATA_DIR=/app/var
ENTRYPOINT ["esr"]
CMD ["--help"]
