from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck  # noqa: F401
