# The gameday worker image, buildable from the repository alone (`docker build -t gameday-worker .`).
# Only the package's own folders are copied: a local .env with the team's passwords never enters the image.
# The same image is a site agent: one worker per host you drill on, with GAMEDAY_SITE set
# (docker-compose.agent.yml; README.md, "Sites").
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY cli cli
COPY demo demo
COPY model model
COPY report report
COPY console console
COPY config config
# psycopg[binary] (PostgreSQL results) is a dependency of the package itself.
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 gameday
# Not root: a worker only needs to reach Temporal, the results database and the drills' targets. A home of its
# own, because the worker keeps its data dir (~/.local/share/gameday) there.
USER gameday
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["gameday"]
CMD ["worker"]
