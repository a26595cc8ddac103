"""Converters (torch -> ONNX / TFLite, int8 quantisation, parity checks, model cards).

A repository-root package (`python -m converters.convert_embedder ...` from the clone), not in the runtime
wheel; needs the `convert` extra (`pip install -e ".[convert]"`), and says so on import when torch, onnx or
litert_torch is missing. It imports the runtime; the runtime never imports it.
"""

from squeezerface.errors import require_extra

require_extra("converters", ("torch", "onnx", "litert_torch"), "convert")
