FROM python:3.11-slim
# logs reach `docker compose logs` as they are written
ENV PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tiering tiering
COPY plumbing plumbing
COPY devstack devstack
COPY projections projections
COPY streams streams
COPY replay replay
COPY dashboard dashboard
COPY simulator simulator
COPY bench bench
COPY cli cli
RUN pip install --no-cache-dir .
CMD ["tierstream", "--help"]
