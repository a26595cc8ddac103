"""Converters (torch -> ONNX / TFLite, int8 quantisation, parity checks, model cards).

A repository-root package (`python -m converters.convert_embedder ...` from the clone), not in the runtime
wheel; needs the `convert` extra (`pip install -e ".[convert]"`), and says so on import when torch, onnx or
litert_torch is missing. It imports the runtime; the runtime never imports it.
"""

import importlib.util as _util

from squeezerface.errors import MissingExtraError


def _require(modules: tuple[str, ...], extra: str) -> None:
    """Fail on import, naming the extra, when a dependency of this repository-root tool is absent."""
    missing = []
    for name in modules:
        try:
            found = _util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"`converters` needs {', '.join(missing)}, which the '{extra}' extra installs: "
            f'pip install -e ".[{extra}]" (from the repository root)',
            extra=extra,
        )


_require(("torch", "onnx", "litert_torch"), "convert")
