#!/usr/bin/env bash
# Build and push the pettwin-checks agent image, make sure the Datadog API key secret and the service
# account's roles exist, then deploy agent/cloudrun/service.yaml (the backend with the agent as sidecar).
#
#   PROJECT_ID=pettwin-prod REGION=europe-west1 APP_IMAGE=europe-west1-docker.pkg.dev/pettwin-prod/pettwin/backend:1.4.2 \
#   CONFLUENT_BOOTSTRAP_SERVERS=pkc-xxxxx.europe-west1.gcp.confluent.cloud:9092 CONFLUENT_API_KEY=<key> \
#     agent/cloudrun/deploy.sh            # build, push, deploy
#   agent/cloudrun/deploy.sh --render    # only print the service YAML that would be deployed
#
# Needs gcloud (authenticated, with rights on the project) and docker with buildx for the image. The first run
# reads DD_API_KEY and CONFLUENT_API_SECRET from the environment to create their secrets; later runs never need them.
set -euo pipefail

cd "$(dirname "$0")/../.."

: "${PROJECT_ID:?set PROJECT_ID}"
: "${REGION:?set REGION}"
: "${APP_IMAGE:?set APP_IMAGE (the backend image)}"
: "${CONFLUENT_BOOTSTRAP_SERVERS:?set CONFLUENT_BOOTSTRAP_SERVERS (bootstrap server of the Confluent Cloud cluster)}"
: "${CONFLUENT_API_KEY:?set CONFLUENT_API_KEY (an API key of that cluster)}"
export PROJECT_ID REGION APP_IMAGE CONFLUENT_BOOTSTRAP_SERVERS CONFLUENT_API_KEY
export SERVICE_NAME="${SERVICE_NAME:-pettwin-backend}"
export SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-${SERVICE_NAME}@${PROJECT_ID}.iam.gserviceaccount.com}"
export APP_VERSION="${APP_VERSION:-${APP_IMAGE##*:}}"
export AGENT_IMAGE="${AGENT_IMAGE:-${REGION}-docker.pkg.dev/${PROJECT_ID}/pettwin/pettwin-agent:$(git rev-parse --short HEAD)}"
export DD_SITE="${DD_SITE:-datadoghq.com}"
export DD_ENV="${DD_ENV:-prod}"
export DD_API_KEY_SECRET="${DD_API_KEY_SECRET:-datadog-api-key}"
export CONFLUENT_API_SECRET_SECRET="${CONFLUENT_API_SECRET_SECRET:-confluent-api-secret}"

render() {
  # Only these variables are substituted; any other `$` in the YAML is left alone. The single quotes are
  # deliberate: envsubst gets the names, not the values.
  # shellcheck disable=SC2016
  envsubst '${SERVICE_NAME} ${REGION} ${SERVICE_ACCOUNT} ${APP_IMAGE} ${APP_VERSION} ${AGENT_IMAGE} ${DD_SITE} ${DD_ENV} ${DD_API_KEY_SECRET} ${CONFLUENT_BOOTSTRAP_SERVERS} ${CONFLUENT_API_KEY} ${CONFLUENT_API_SECRET_SECRET}' \
    < agent/cloudrun/service.yaml
}

if [[ "${1:-}" == "--render" ]]; then
  render
  exit 0
fi

echo "==> agent image ${AGENT_IMAGE}"
gcloud auth configure-docker "${REGION}-docker.pkg.dev" --quiet
docker buildx build --platform linux/amd64 -f agent/Dockerfile -t "${AGENT_IMAGE}" --push .

# A Secret Manager secret the service account reads, created on first use from the environment variable named.
ensure_secret() {
  local secret=$1 variable=$2
  echo "==> secret ${secret}"
  if ! gcloud secrets describe "${secret}" --project "${PROJECT_ID}" > /dev/null 2>&1; then
    [[ -n "${!variable:-}" ]] || { echo "set ${variable} once, to create the secret ${secret}" >&2; exit 1; }
    printf '%s' "${!variable}" | gcloud secrets create "${secret}" --project "${PROJECT_ID}" \
      --replication-policy automatic --data-file=-
  fi
  gcloud secrets add-iam-policy-binding "${secret}" --project "${PROJECT_ID}" \
    --member "serviceAccount:${SERVICE_ACCOUNT}" --role roles/secretmanager.secretAccessor --condition None > /dev/null
}
ensure_secret "${DD_API_KEY_SECRET}" DD_API_KEY
ensure_secret "${CONFLUENT_API_SECRET_SECRET}" CONFLUENT_API_SECRET

echo "==> read-only roles the checks need for ${SERVICE_ACCOUNT}"
# Cloud Monitoring time series (Cloud Run, Vertex AI, quota), Cloud Run Admin API (revision readiness),
# Vertex AI countTokens probe.
for role in roles/monitoring.viewer roles/run.viewer roles/aiplatform.user; do
  gcloud projects add-iam-policy-binding "${PROJECT_ID}" --member "serviceAccount:${SERVICE_ACCOUNT}" \
    --role "${role}" --condition None > /dev/null
done

echo "==> service ${SERVICE_NAME} in ${REGION}"
rendered="$(mktemp)"
trap 'rm -f "${rendered}"' EXIT
render > "${rendered}"
gcloud run services replace "${rendered}" --project "${PROJECT_ID}" --region "${REGION}"
