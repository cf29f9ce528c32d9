"""Which credential source is used, and how it is named in errors (nothing fetched here)."""

import pytest
from datadog_checks.base.utils.http import RequestsWrapper

from pettwin_checks.gcp import Endpoints
from pettwin_checks.gcp.credentials import GoogleCredentials
from pettwin_checks.gcp.metadata import last_path_segment

pytestmark = pytest.mark.unit


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "169.254.169.254")
    return tmp_path


def source(**options):
    return GoogleCredentials(RequestsWrapper({}, {}), Endpoints(), **options).source


def test_adc_order_and_names(clean_env, monkeypatch):
    assert source() == "the metadata server at http://169.254.169.254 (attached service account)"
    adc = clean_env / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir()
    adc.write_text("{}")
    assert source() == f"gcloud application default credentials {adc}"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/etc/keys/sa.json")
    assert source() == "GOOGLE_APPLICATION_CREDENTIALS=/etc/keys/sa.json"
    assert source(credentials_path="/k.json") == "credentials_path /k.json"
    assert (
        source(credentials_path="/k.json", impersonate_service_account="r@p.iam.gserviceaccount.com")
        == "credentials_path /k.json, impersonating r@p.iam.gserviceaccount.com"
    )


def test_endpoints_from_options(clean_env):
    endpoints = Endpoints.from_config({"monitoring_endpoint": "http://127.0.0.1:8080/", "metadata_endpoint": "h:1"})
    assert endpoints.monitoring == "http://127.0.0.1:8080"
    assert endpoints.metadata_root == "http://h:1/computeMetadata/v1"
    assert endpoints.aiplatform_base("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert endpoints.aiplatform_base("global") == "https://aiplatform.googleapis.com"
    # Multi-region locations have hosts of their own, not the regional pattern (no us-aiplatform.googleapis.com).
    assert endpoints.aiplatform_base("us") == "https://aiplatform.us.rep.googleapis.com"
    assert endpoints.aiplatform_base("eu") == "https://aiplatform.eu.rep.googleapis.com"
    assert Endpoints.from_config({"aiplatform_endpoint": "http://e"}).aiplatform_base("us-east1") == "http://e"
    assert Endpoints().metadata == "http://169.254.169.254"  # GCE_METADATA_HOST, as google-auth honours it


def test_metadata_values_reduced_to_names():
    assert last_path_segment("projects/412345678901/regions/us-central1") == "us-central1"
    assert last_path_segment("projects/412345678901/zones/us-central1-a\n") == "us-central1-a"
