"""agent/datadog.yaml and conf.d/pettwin_backend.d: every regex compiles with RE2 and does what it is for.

Sample lines are shaped like what the PetTwin backend, its Kafka client and the agent's neighbours log.
Secret-shaped values are assembled at run time so no key-like literal sits in the repository.
"""

from __future__ import annotations

import json

import pytest
import re2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.agent.agent_emulation import (
    SOURCE_RULE_TYPES,
    aggregate_multi_line,
    backend_log_sources,
    compile_go,
    datadog_config,
    global_rules,
    go_expand,
    go_replace_all,
    load_rules,
    process_line,
)

pytestmark = pytest.mark.unit

GOOGLE_API_KEY = "AIza" + "Sy" + "B7x-Q_" * 5 + "abc"  # 4 + 35 characters
DD_API_KEY = "0123456789abcdef" * 2
CONFLUENT_SECRET = "c0NfLu3nT+s3cr3t/" * 4
BEARER = "eyJhbGciOiJSUzI1NiJ9" + ".eyJzdWIiOiJwZXR0d2luIn0" + ".c2lnbmF0dXJlc2lnbmF0dXJl"
OAUTH_TOKEN = "ya29." + "a0AfB_byC" * 6


@pytest.fixture(scope="module")
def rules():
    return global_rules()


@pytest.fixture(scope="module")
def service_account_key_json() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "pettwin-prod",
            "private_key_id": "3f1c" * 10,
            "private_key": pem,
            "client_email": "pettwin-backend@pettwin-prod.iam.gserviceaccount.com",
        }
    )


def test_every_global_rule_compiles_with_re2_and_has_a_unique_name(rules):
    raw = datadog_config()["logs_config"]["processing_rules"]
    assert len(rules) == len(raw)
    names = [rule["name"] for rule in raw]
    assert len(names) == len(set(names))
    for rule in raw:
        if rule["type"] == "mask_sequences":
            assert rule["replace_placeholder"], rule["name"]


def test_re2_rejects_what_go_rejects():
    # The guard the whole file relies on: a Perl-only construct fails here as it would in the agent.
    with pytest.raises(re2.error):
        compile_go(r"(?<=key=)\w+")


@pytest.mark.parametrize(
    "template, expected",
    [("${1}[X]", "key=[X]"), ("$1[X]", "key=[X]"), ("$1x", ""), ("$$1", "$1"), ("${9}", ""), ("a$", "a$")],
)
def test_go_template_expansion(template, expected):
    match = compile_go(r"(key=)(\w+)").search("key=value")
    assert go_expand(template, match) == expected


MASKED = [
    # (line, what must be gone, what must be there instead)
    (
        '{"msg":"alert sent","owner_email":"jane.doe+pets@example.co.uk","pet_id":"p-123"}',
        "jane.doe",
        '{"msg":"alert sent","owner_email":"[EMAIL_REDACTED]","pet_id":"p-123"}',
    ),
    (
        '{"event":"owner_updated","owner_phone":"(415) 555-0100","pet_id":"p-9"}',
        "555-0100",
        '{"event":"owner_updated","owner_phone":"[PHONE_REDACTED]","pet_id":"p-9"}',
    ),
    ('{"phone":"0612345678"}', "0612345678", '{"phone":"[PHONE_REDACTED]"}'),
    ("SMS to +14155550100 queued", "4155550100", "SMS to [PHONE_REDACTED] queued"),
    ("calling +44 20 7946 0958 for pet p-1", "7946", "calling [PHONE_REDACTED] for pet p-1"),
    ("owner mobile +33 6 12 34 56 78", "12 34 56", "owner mobile [PHONE_REDACTED]"),
    ("vet line +1 (415) 555-0100 ext", "555-0100", "vet line [PHONE_REDACTED] ext"),
    ("fallback number 415-555-0100", "555-0100", "fallback number [PHONE_REDACTED]"),
    ("fallback number (415) 555-0100.", "555-0100", "fallback number [PHONE_REDACTED]."),
    (
        f"GET /v1/alerts Authorization: Bearer {BEARER}",
        "eyJzdWIi",
        "GET /v1/alerts Authorization: Bearer [TOKEN_REDACTED]",
    ),
    (
        f'{{"headers":{{"authorization":"bearer {BEARER}"}}}}',
        "c2lnbmF0",
        '{"headers":{"authorization":"Bearer [TOKEN_REDACTED]"}}',
    ),
    (f"DD_API_KEY={DD_API_KEY} starting", DD_API_KEY, "DD_API_KEY=[REDACTED] starting"),
    (f'{{"api_key": "{DD_API_KEY}"}}', DD_API_KEY, '{"api_key": "[REDACTED]"}'),
    (f"x-api-key: {DD_API_KEY}", DD_API_KEY, "x-api-key: [REDACTED]"),
    (
        f"POST https://generativelanguage.googleapis.com/v1/models/gemini-pro?key={GOOGLE_API_KEY}",
        GOOGLE_API_KEY,
        "POST https://generativelanguage.googleapis.com/v1/models/gemini-pro?key=[API_KEY_REDACTED]",
    ),
    (
        f"kafka config sasl.password={CONFLUENT_SECRET} sasl.mechanism=PLAIN",
        "c0NfLu3nT",
        "kafka config sasl.password=[REDACTED] sasl.mechanism=PLAIN",
    ),
    (f'{{"sasl_password": "{CONFLUENT_SECRET}"}}', "c0NfLu3nT", '{"sasl_password": "[REDACTED]"}'),
    (f"export CONFLUENT_API_SECRET={CONFLUENT_SECRET}", "c0NfLu3nT", "export CONFLUENT_API_SECRET=[REDACTED]"),
    (
        (
            '{"jaas":"org.apache.kafka.common.security.plain.PlainLoginModule required username=\\"ABCDEFGHIJKLMNOP\\" '
            f'password=\\"{CONFLUENT_SECRET}\\";"}}'
        ),
        "c0NfLu3nT",
        (
            '{"jaas":"org.apache.kafka.common.security.plain.PlainLoginModule required username=\\"ABCDEFGHIJKLMNOP\\" '
            'password=\\"[REDACTED]\\";"}'
        ),
    ),
    (f"firebase id token {BEARER} rejected: expired", "eyJzdWIi", "firebase id token [JWT_REDACTED] rejected: expired"),
    (f"metadata token {OAUTH_TOKEN} expires_in=3599", "a0AfB", "metadata token [TOKEN_REDACTED] expires_in=3599"),
    (
        f"client_secret={CONFLUENT_SECRET}&grant_type=refresh_token",
        "c0NfLu3nT",
        "client_secret=[REDACTED]&grant_type=refresh_token",
    ),
]


@pytest.mark.parametrize("line, secret, expected", MASKED, ids=[f"masked-{i}" for i in range(len(MASKED))])
def test_pii_and_secrets_are_masked(rules, line, secret, expected):
    processed = process_line(line, rules)
    assert processed == expected
    assert secret not in processed


def test_service_account_key_is_masked_whole(rules, service_account_key_json):
    line = json.dumps({"level": "error", "msg": "bad credentials file", "content": service_account_key_json})
    processed = process_line(line, rules)
    assert "PRIVATE KEY-----" not in processed
    assert "MII" not in processed
    assert "3f1c3f1c" not in processed
    assert "[PRIVATE_KEY_REDACTED]" in processed
    # The rest of the line still says what happened.
    assert '\\"project_id\\": \\"pettwin-prod\\"' in processed
    assert '"msg": "bad credentials file"' in processed


def test_service_account_key_with_real_newlines_and_truncated_key_are_masked(rules, service_account_key_json):
    pem = json.loads(service_account_key_json)["private_key"]
    assert process_line(f"loaded key {pem.strip()} from env", rules) == "loaded key [PRIVATE_KEY_REDACTED] from env"
    truncated = json.dumps({"msg": "key", "private_key": pem[:300]})
    processed = process_line(truncated, rules)
    assert "MII" not in processed and processed.endswith('"private_key": "[PRIVATE_KEY_REDACTED]"}')


SURVIVES = [
    '{"timestamp":"2024-05-01T12:00:00.123+02:00","level":"info","msg":"consumed batch","count":50}',
    "Tue, 01 May 2024 12:00:00 +1000 consumer rebalanced",
    '{"dd.trace_id":"1234567890123456789","dd.span_id":"9876543210987654321","msg":"ok"}',
    '{"trace_id":"6651f0a83b1c9a7e4d2c1b0a99887766","span_id":"4d2c1b0a99887766"}',
    "consumer group pettwin-alerts lag 5234 on pet-telemetry[3] offset 1234567890123 ts 1714564800000",
    "pet 550e8400-e29b-41d4-a716-446655440000 scored 0.93 by gemini-1.5-pro-002",
    "connected to 10.128.0.15:9092 and 192.168.100.200:9093 agent 7.73.0",
    '{"usage":{"tokens_used":1234,"prompt_token_count":57,"candidates_token_count":210}}',
    (
        "POST https://us-central1-aiplatform.googleapis.com/v1/projects/pettwin-prod/locations/us-central1/"
        "publishers/google/models/gemini-1.5-pro:generateContent 200 1830ms"
    ),
    '{"path":"/api/pets/healthz-report","status":200}',
    '"GET /healthz HTTP/1.1" 503',
    '{"path":"/healthz","status":500,"msg":"firestore unreachable"}',
    '{"msg":"quota headroom 8.5%","metric":"aiplatform.googleapis.com/quota/online_prediction_requests"}',
    '{"secret_version":"projects/pettwin-prod/secrets/datadog-api-key/versions/latest"}',
]


@pytest.mark.parametrize("line", SURVIVES, ids=[f"survives-{i}" for i in range(len(SURVIVES))])
def test_operational_lines_survive_unchanged(rules, line):
    assert process_line(line, rules) == line


@pytest.mark.parametrize(
    "line",
    [
        'INFO:     169.254.1.1:51234 - "GET /healthz HTTP/1.1" 200 OK',
        '10.0.0.1 - - [01/May/2024:12:00:00 +0000] "HEAD /readyz HTTP/1.1" 204 0',
        '{"path":"/healthz","status":200,"duration_ms":1.2}',
        '{"status_code":"200","http.url_details.path":"/live","user_agent":"GoogleHC/1.0"}',
        '{"url":"http://localhost:8080/healthz?probe=startup","status":200}',
    ],
)
def test_successful_health_checks_are_dropped(rules, line):
    assert process_line(line, rules) is None


def test_every_global_rule_fires_on_some_sample(rules, service_account_key_json):
    fired: set[str] = set()
    samples = (
        [line for line, _, _ in MASKED]
        + SURVIVES
        + [
            '"GET /healthz HTTP/1.1" 200',
            '{"path":"/healthz","status":200}',
            service_account_key_json,
            json.dumps({"private_key": json.loads(service_account_key_json)["private_key"][:200]}),
        ]
    )
    for line in samples:
        process_line(line, rules, fired)
    assert fired == {rule.name for rule in rules}


def test_backend_log_sources_set_service_and_source_and_valid_rules():
    sources = backend_log_sources()
    assert {source["type"] for source in sources} == {"file", "docker"}
    for source in sources:
        assert source["service"] == "pettwin-backend"
        assert source["source"] == "python"
        load_rules(source["log_processing_rules"], SOURCE_RULE_TYPES)
    file_source = next(source for source in sources if source["type"] == "file")
    assert file_source["path"].startswith("/var/log/pettwin/")


TRACEBACK_STREAM = [
    '{"timestamp":"2024-05-01T12:00:00Z","level":"info","msg":"scoring pet p-1"}',
    "Traceback (most recent call last):",
    '  File "/app/pettwin/scoring.py", line 42, in score',
    "    response = model.generate_content(prompt)",
    "google.api_core.exceptions.ResourceExhausted: 429 Quota exceeded for aiplatform.googleapis.com",
    "",
    "During handling of the above exception, another exception occurred:",
    "",
    "Traceback (most recent call last):",
    '  File "/app/pettwin/worker.py", line 88, in run',
    "    score(pet)",
    "RuntimeError: scoring failed",
    "2024-05-01 12:00:01,234 WARNING pettwin.worker retrying in 2s",
    'INFO:     169.254.1.1:51234 - "POST /v1/telemetry HTTP/1.1" 202 Accepted',
    '{"timestamp":"2024-05-01T12:00:02Z","level":"info","msg":"scored pet p-1"}',
]


@pytest.mark.parametrize("source_type", ["file", "docker"])
def test_python_tracebacks_are_aggregated(source_type):
    source = next(source for source in backend_log_sources() if source["type"] == source_type)
    (multi_line,) = [
        rule for rule in load_rules(source["log_processing_rules"], SOURCE_RULE_TYPES) if rule.type == "multi_line"
    ]
    records = aggregate_multi_line(TRACEBACK_STREAM, multi_line.regex)
    assert len(records) == 6
    assert records[0] == TRACEBACK_STREAM[0]
    # The first traceback carries its frames and the exception line up to the chained one.
    assert records[1].splitlines()[0] == "Traceback (most recent call last):"
    assert "ResourceExhausted: 429" in records[1] and "During handling" in records[1]
    assert records[2].endswith("RuntimeError: scoring failed")
    assert records[3:] == TRACEBACK_STREAM[12:]


def test_apm_ignore_resources_match_probes_only():
    ignore = [compile_go(pattern) for pattern in datadog_config()["apm_config"]["ignore_resources"]]

    def ignored(resource: str) -> bool:
        return any(regex.search(resource) for regex in ignore)

    for resource in ["GET /healthz", "GET /health", "HEAD /readyz", "GET /live", "GET /metrics"]:
        assert ignored(resource), resource
    for resource in ["GET /api/pets/{id}", "POST /v1/telemetry", "GET /healthz-report", "POST /healthz"]:
        assert not ignored(resource), resource


def test_apm_receiver_and_sampling_settings():
    apm = datadog_config()["apm_config"]
    assert apm["enabled"] is True and apm["apm_non_local_traffic"] is True
    assert apm["target_traces_per_second"] > 0 and apm["errors_per_second"] > 0
    assert apm["obfuscation"]["http"] == {"remove_query_string": True, "remove_paths_with_digits": True}


def _replace_tags(meta: dict[str, str]) -> dict[str, str]:
    """The trace agent's Replacer: each rule in order, on the named tag or on every tag for `*`."""
    result = dict(meta)
    for rule in datadog_config()["apm_config"]["replace_tags"]:
        regex = compile_go(rule["pattern"])
        for key in list(result):
            if rule["name"] in ("*", key) and not key.startswith("_"):
                result[key] = go_replace_all(regex, result[key], rule["repl"])
    return result


def test_apm_replace_tags_scrub_urls_and_tags():
    meta = _replace_tags(
        {
            "http.url": f"https://api.pettwin.app/owners/jane@example.com/pets?token={DD_API_KEY}&page=2",
            "owner": "jane@example.com",
            "http.request.headers.authorization": f"Bearer {BEARER}",
            "error.msg": "SMS to +14155550100 failed",
            "gcp.api_key": GOOGLE_API_KEY,
            "kafka.topic": "pet-telemetry",
            "_dd.p.dm": "-0",
        }
    )
    assert meta["http.url"] == "https://api.pettwin.app/owners/?/pets?token=?&page=2"
    assert meta["owner"] == "[EMAIL_REDACTED]"
    assert meta["http.request.headers.authorization"] == "[TOKEN_REDACTED]"
    assert meta["error.msg"] == "SMS to [PHONE_REDACTED] failed"
    assert meta["gcp.api_key"] == "[TOKEN_REDACTED]"
    assert meta["kafka.topic"] == "pet-telemetry"
    assert meta["_dd.p.dm"] == "-0"
