# The gameday worker image, buildable from the repository alone.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY cli cli
COPY demo demo
RUN pip install --no-cache-dir . "psycopg[binary]>=3.1"
USER nobody
ENTRYPOINT []
CMD ["gameday", "worker"]
