import pytest

from pettwin_checks.gcp.errors import GcpApiError, GcpAuthError, redact

pytestmark = pytest.mark.unit

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    "secret_text, secret",
    [
        ('{"access_token": "opaque-token-value", "expires_in": 3599}', "opaque-token-value"),
        ("token ya29.a0AfH6SMBx-secret_part", "ya29.a0AfH6SMBx"),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        (f'"private_key": "{PEM}"', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        ("assertion=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl&grant_type=x", "c2lnbmF0dXJl"),
        ("refresh 1//0gLxyzABCDEFGHIJKLMNOP", "1//0gLxyzABCDEFGHIJKLMNOP"),
    ],
)
def test_redact_removes_secrets(secret_text, secret):
    cleaned = redact(secret_text)
    assert secret not in cleaned
    assert "<redacted>" in cleaned


def test_redact_caps_length_and_keeps_plain_text():
    assert redact("Permission monitoring.timeSeries.list denied") == "Permission monitoring.timeSeries.list denied"
    assert len(redact("x" * 1000)) == 300


def test_error_messages_go_through_redaction():
    assert "ya29.abc" not in str(GcpAuthError("credentials_path /k.json", "got ya29.abc back"))
    assert "ya29.abc" not in str(GcpApiError("monitoring", 500, "echo Bearer ya29.abc"))
    assert "credentials_path /k.json" in str(GcpAuthError("credentials_path /k.json", "bad"))
