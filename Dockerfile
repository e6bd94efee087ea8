# The contagion API image: `docker compose up -d` runs it next to Neo4j (docker-compose.yml).
# The explorer's graph library comes from npm in a build stage.
FROM node:20-slim AS explorer
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
# the exact versions and hashes of requirements.lock (scripts/lock regenerates it), then the
# project itself with no further resolution
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY graph graph
COPY ingest ingest
COPY simulate simulate
COPY gnn gnn
COPY api api
COPY --from=explorer /build/node_modules/cytoscape/dist/cytoscape.min.js api/explorer/vendor/
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && pip check \
    && useradd --create-home contagion
USER contagion
EXPOSE 8000
ENTRYPOINT ["contagion"]
CMD ["serve", "--store", "bolt://neo4j:7687", "--host", "0.0.0.0", "--port", "8000", \
     "--keys", "/keys/api-keys.json"]
