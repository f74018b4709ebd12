FROM python:3.11-slim
# logs reach `docker compose logs` as they are written
ENV PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tiering tiering
COPY streams streams
COPY projections projections
COPY replay replay
COPY devstack devstack
COPY bench bench
RUN pip install --no-cache-dir .
CMD ["tierstream", "--help"]
