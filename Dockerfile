# One image for every process of docker-compose.yml (api, worker, beat, flower, migrate).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY api ./api
RUN pip install .

COPY alembic.ini celeryconfig.py Procfile ./
COPY migrations ./migrations

RUN useradd --create-home --uid 1000 hms && mkdir /data && chown hms /data
USER hms
ENV HMS_DATA_DIR=/data NUMBA_CACHE_DIR=/tmp/numba-cache
