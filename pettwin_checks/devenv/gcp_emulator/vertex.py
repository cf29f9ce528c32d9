"""Vertex AI publisher-model methods the per-host probe calls: countTokens and a minimal generateContent.

Token arithmetic is deterministic so tests can predict it: each text part counts ceil(len(text) / 4) tokens
(at least 1 for a non-empty part) and its non-whitespace characters are the billable characters.
"""

from __future__ import annotations

import hashlib
import math
import time

from .errors import ApiError
from .monitoring_query import format_time
from .scenario import Scenario

LEARN_MORE = " Learn more: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/gemini"
ROLES = {"user", "model"}
# GenerationConfig ranges (Vertex AI's Gemini inference reference): (lowest, highest, both inclusive).
RANGES = {
    "temperature": (0.0, 2.0),
    "topP": (0.0, 1.0),
    "topK": (1, 40),
    "candidateCount": (1, 8),
}
# The most output tokens a model generates: Gemini 2.5 models 65,536, earlier ones 8,192.
MAX_OUTPUT_TOKENS = {"gemini-2.5-": 65536}
DEFAULT_MAX_OUTPUT_TOKENS = 8192


def _refused(message: str) -> ApiError:
    """Vertex AI's 400 for a request body it cannot serve: a message, no details."""
    return ApiError(400, message)


def _snake_or_camel(mapping: dict, camel: str):
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return mapping.get(camel, mapping.get(snake))


def _texts(body: dict) -> list[str]:
    """The request's text parts, once its contents pass Vertex AI's rules: at least one content, each with a
    role user or model and at least one part, each part holding data, no text empty."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _refused(
            "Unable to submit request because it has an empty contents field. Add at least one "
            "content with a non-empty parts field." + LEARN_MORE
        )
    texts = []
    for index, content in enumerate(contents):
        role = content.get("role")
        if role == "system":
            raise _refused("Content with system role is not supported.")
        if role not in ROLES:
            raise _refused("Unable to submit request because Please use a valid role: user, model.." + LEARN_MORE)
        parts = content.get("parts")
        if not parts:
            raise _refused(
                "Unable to submit request because it must include at least one parts field, "
                "which describes the prompt input." + LEARN_MORE
            )
        for number, part in enumerate(parts):
            if not any(value is not None for value in part.values()):
                raise _refused(
                    f"* GenerateContentRequest.contents[{index}].parts[{number}].data: required oneof field "
                    "'data' must have one initialized field"
                )
            if "text" in part and not part["text"]:
                raise _refused(
                    "Unable to submit request because it has an empty text parameter. Add a value to the "
                    "parameter and try again." + LEARN_MORE
                )
            if part.get("text"):
                texts.append(part["text"])
    return texts


def _out_of_range(name: str, value, lowest, highest_exclusive) -> ApiError:
    return _refused(
        f"Unable to submit request because it has a {name} value of {value:g} but the supported range is from "
        f"{lowest:g} (inclusive) to {highest_exclusive:g} (exclusive). Update the value and try again."
    )


def _check_generation_config(body: dict, model: str) -> None:
    """GenerationConfig values outside what Vertex AI serves for the model: Google's 400."""
    config = _snake_or_camel(body, "generationConfig") or {}
    for name, (lowest, highest) in RANGES.items():
        value = _snake_or_camel(config, name)
        if value is not None and not lowest <= float(value) <= highest:
            # Integer ranges are printed with an exclusive upper bound one above the highest value.
            upper = highest + 1 if isinstance(highest, int) else highest + 0.0001
            raise _out_of_range(name, float(value), lowest, upper)
    tokens = _snake_or_camel(config, "maxOutputTokens")
    limit = next((n for prefix, n in MAX_OUTPUT_TOKENS.items() if model.startswith(prefix)), DEFAULT_MAX_OUTPUT_TOKENS)
    if tokens is not None and not 1 <= int(tokens) <= limit:
        raise _out_of_range("maxOutputTokens", int(tokens), 1, limit + 1)


def count_tokens_of(texts: list[str]) -> tuple[int, int]:
    tokens = sum(max(1, math.ceil(len(t) / 4)) for t in texts if t)
    characters = sum(len("".join(t.split())) for t in texts)
    return tokens, characters


class VertexModels:
    def __init__(self, scenario: Scenario):
        self.scenario = scenario

    def _check(self, project: str, location: str, publisher: str, model: str) -> None:
        resource = f"projects/{project}/locations/{location}/publishers/{publisher}/models/{model}"
        if project not in {self.scenario.project_id, self.scenario.project_number}:
            raise ApiError(
                403,
                f"Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'//aiplatform.googleapis.com/{resource}' (or it may not exist).",
            )
        if publisher != "google" or model not in self.scenario.vertex_models:
            raise ApiError(
                404,
                f"Publisher Model `{resource}` was not found or your project does not have access "
                "to it. Please ensure you are using a valid model version. For more information, "
                "see: https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
            )

    def count_tokens(self, project: str, location: str, publisher: str, model: str, body: dict) -> dict:
        self._check(project, location, publisher, model)
        _check_generation_config(body, model)
        tokens, characters = count_tokens_of(_texts(body))
        return {
            "totalTokens": tokens,
            "totalBillableCharacters": characters,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
        }

    def generate_content(self, project: str, location: str, publisher: str, model: str, body: dict) -> dict:
        self._check(project, location, publisher, model)
        _check_generation_config(body, model)
        prompt_tokens, _ = count_tokens_of(_texts(body))
        answer = "OK"
        answer_tokens, _ = count_tokens_of([answer])
        now = time.time()
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": answer}]},
                    "finishReason": "STOP",
                    "avgLogprobs": -0.05,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": answer_tokens,
                "totalTokenCount": prompt_tokens + answer_tokens,
                "trafficType": "ON_DEMAND",
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
                "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": answer_tokens}],
            },
            "modelVersion": model,
            "createTime": format_time(round(now, 6)),
            "responseId": hashlib.sha1(f"{now}{model}".encode()).hexdigest()[:22],
        }
