"""Vertex AI publisher-model methods the per-host probe calls: countTokens and a minimal generateContent.

Token arithmetic is deterministic so tests can predict it: each text part counts ceil(len(text) / 4) tokens
(at least 1 for a non-empty part) and its non-whitespace characters are the billable characters.
"""

from __future__ import annotations

import hashlib
import math
import time

from .errors import ApiError, invalid_argument
from .monitoring_query import format_time
from .scenario import Scenario


def _texts(body: dict) -> list[str]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid_argument(
            "Unable to submit request because it has an empty contents field. Add at least one "
            "content with a non-empty parts field.",
            "contents",
        )
    texts = []
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise invalid_argument(
                "Unable to submit request because it must include at least one parts field, "
                "which describes the prompt input.",
                "contents.parts",
            )
        texts.extend(str(p.get("text", "")) for p in parts if isinstance(p, dict))
    return texts


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
        tokens, characters = count_tokens_of(_texts(body))
        return {
            "totalTokens": tokens,
            "totalBillableCharacters": characters,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
        }

    def generate_content(self, project: str, location: str, publisher: str, model: str, body: dict) -> dict:
        self._check(project, location, publisher, model)
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
