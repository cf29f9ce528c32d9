# syntax=docker/dockerfile:1
# The PetTwin-like Kafka workload of docker-compose.yml: pettwin-checks with its runtime dependencies, running
# `python -m pettwin_checks.devenv.workload`. Build from the repository root:
#   docker build -f agent/workload.Dockerfile -t pettwin-workload .
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pettwin_checks/ pettwin_checks/
# The package installed is this checkout (a path, not a registry name), so there is no version to pin;
# its dependencies carry their own bounds in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[deps]" \
 && useradd --system --no-create-home --uid 10001 pettwin
USER 10001
ENTRYPOINT ["python", "-m", "pettwin_checks.devenv.workload"]
