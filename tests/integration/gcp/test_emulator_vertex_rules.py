"""Vertex AI request bodies are refused as Vertex AI refuses them, driven by Google's own discovery-based client
(google-api-python-client, aiplatform v1): roles other than user/model, no parts, a part without data, empty text,
generationConfig values out of range. Each answer is Google's 400 INVALID_ARGUMENT with the message alone."""

import json

import pytest

from tests.integration.gcp.emulator_calls import CLOUD_PLATFORM, http_error, service

pytestmark = pytest.mark.integration

LEARN_MORE = " Learn more: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/gemini"
HELLO = [{"role": "user", "parts": [{"text": "hello"}]}]


def _range(name, value, lowest, upper) -> str:
    return (
        f"Unable to submit request because it has a {name} value of {value} but the supported range is from "
        f"{lowest} (inclusive) to {upper} (exclusive). Update the value and try again."
    )


RULES = [
    pytest.param(
        {"contents": []}, "Unable to submit request because it has an empty contents field.", id="no-contents"
    ),
    pytest.param(
        {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
        "Unable to submit request because Please use a valid role: user, model.." + LEARN_MORE,
        id="role-assistant",
    ),
    pytest.param(
        {"contents": [{"parts": [{"text": "hi"}]}]},
        "Unable to submit request because Please use a valid role: user, model.." + LEARN_MORE,
        id="role-missing",
    ),
    pytest.param(
        {"contents": [{"role": "system", "parts": [{"text": "hi"}]}]},
        "Content with system role is not supported.",
        id="role-system",
    ),
    pytest.param(
        {"contents": [{"role": "user", "parts": []}]},
        "Unable to submit request because it must include at least one parts field, which describes the prompt "
        "input." + LEARN_MORE,
        id="no-parts",
    ),
    pytest.param(
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{}]}]},
        "* GenerateContentRequest.contents[1].parts[0].data: required oneof field 'data' must have one "
        "initialized field",
        id="part-without-data",
    ),
    pytest.param(
        {"contents": [{"role": "user", "parts": [{"text": ""}]}]},
        "Unable to submit request because it has an empty text parameter. Add a value to the parameter and try "
        "again." + LEARN_MORE,
        id="empty-text",
    ),
    pytest.param(
        {"contents": HELLO, "generationConfig": {"temperature": 2.5}},
        _range("temperature", 2.5, 0, 2.0001),
        id="temperature",
    ),
    pytest.param(
        {"contents": HELLO, "generationConfig": {"temperature": -0.1}},
        _range("temperature", -0.1, 0, 2.0001),
        id="temperature-negative",
    ),
    pytest.param({"contents": HELLO, "generationConfig": {"topP": 1.5}}, _range("topP", 1.5, 0, 1.0001), id="topP"),
    pytest.param({"contents": HELLO, "generationConfig": {"topK": 64}}, _range("topK", 64, 1, 41), id="topK"),
    pytest.param(
        {"contents": HELLO, "generationConfig": {"candidateCount": 9}},
        _range("candidateCount", 9, 1, 9),
        id="candidateCount",
    ),
    pytest.param(
        {"contents": HELLO, "generationConfig": {"maxOutputTokens": 100000}},
        _range("maxOutputTokens", 100000, 1, 65537),
        id="maxOutputTokens",
    ),
    pytest.param(
        {"contents": HELLO, "generationConfig": {"maxOutputTokens": 0}},
        _range("maxOutputTokens", 0, 1, 65537),
        id="maxOutputTokens-zero",
    ),
]


def _models(emulator):
    return service(emulator, "aiplatform", "v1", [CLOUD_PLATFORM]).projects().locations().publishers().models()


def _model(emulator, name="gemini-2.5-flash") -> str:
    return f"projects/{emulator.project_id}/locations/us-central1/publishers/google/models/{name}"


@pytest.mark.parametrize("body, message", RULES)
@pytest.mark.parametrize("method", ["generateContent", "countTokens"])
def test_vertex_refuses_the_body_with_googles_400(gcp_env, method, body, message):
    models = _models(gcp_env)
    call = (
        models.generateContent(model=_model(gcp_env), body=body)
        if method == "generateContent"
        else models.countTokens(endpoint=_model(gcp_env), body=body)
    )
    error = http_error(call)
    assert error.status_code == 400
    payload = json.loads(error.content)["error"]
    assert (payload["code"], payload["status"]) == (400, "INVALID_ARGUMENT")
    assert payload["message"].startswith(message)
    assert "details" not in payload


def test_the_output_token_ceiling_is_the_models(gcp_env):
    models = _models(gcp_env)
    body = {"contents": HELLO, "generationConfig": {"maxOutputTokens": 8193}}
    error = http_error(models.generateContent(model=_model(gcp_env, "gemini-2.0-flash-001"), body=body))
    assert json.loads(error.content)["error"]["message"] == _range("maxOutputTokens", 8193, 1, 8193)
    answer = models.generateContent(model=_model(gcp_env), body=body).execute()
    assert answer["usageMetadata"]["promptTokenCount"] == 2


def test_a_valid_conversation_with_every_bound_is_served(gcp_env):
    config = {"temperature": 2, "topP": 0, "topK": 40, "candidateCount": 8, "maxOutputTokens": 65536}
    contents = [
        {"role": "user", "parts": [{"text": "hello"}]},
        {"role": "model", "parts": [{"text": "hi"}]},
        {"role": "user", "parts": [{"text": "how is Rex?"}]},
    ]
    answer = _models(gcp_env).generateContent(
        model=_model(gcp_env), body={"contents": contents, "generationConfig": config}
    )
    assert answer.execute()["candidates"][0]["content"]["role"] == "model"
