# The contagion API image: `docker compose up -d` runs it next to Neo4j (docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY graph graph
COPY ingest ingest
COPY simulate simulate
COPY gnn gnn
COPY api api
RUN pip install --no-cache-dir . && useradd --create-home contagion
USER contagion
EXPOSE 8000
ENTRYPOINT ["contagion"]
CMD ["serve", "--store", "bolt://neo4j:7687", "--host", "0.0.0.0", "--port", "8000", \
     "--keys", "/keys/api-keys.json"]
