# One image for every Assay service; docker-compose.yml picks the command.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir . && npm ci --no-audit --no-fund --prefix services/analyzers/static/node
COPY generated ./generated
ENV PYTHONUNBUFFERED=1
