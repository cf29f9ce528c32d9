# syntax=docker/dockerfile:1
# The PetTwin-like Kafka workload of docker-compose.yml (and, with another entrypoint, the GCP emulator and the app
# stand-in of docker-compose.e2e.yml): pettwin-checks with its runtime dependencies, running
# `python -m pettwin_checks.devenv.workload`. Build from the repository root:
#   docker build -f agent/workload.Dockerfile -t pettwin-workload .
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pettwin_checks/ pettwin_checks/
# The package installed is this checkout (a path, not a registry name), so there is no version to pin;
# its dependencies carry their own bounds in pyproject.toml. Editable: the wheel leaves pettwin_checks/devenv out
# (the agent image must not carry it), and devenv is what this image runs. The GCP emulator validates requests
# against the discovery documents google-api-python-client ships (the dev extra's floor).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --editable ".[deps]" "google-api-python-client>=2.150" \
 && useradd --system --no-create-home --uid 10001 pettwin
USER 10001
ENTRYPOINT ["python", "-m", "pettwin_checks.devenv.workload"]
