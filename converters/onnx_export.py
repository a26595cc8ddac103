"""ONNX export (torch dynamo exporter, opset 18, one self-contained file) and onnxruntime static int8.

Model-agnostic: the embedder's converter uses these, and so will the detector's. Known-good settings on
this toolchain: dynamo=True with opset 18 (opset 17 fails), external_data=False (one file to ship), QDQ
per-channel with uint8 activations / int8 weights and MinMax calibration (Percentile fails here), and
`quant_pre_process(skip_symbolic_shape=True)` because the symbolic shape pass fails on dynamo graphs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

OPSET = 18


def export_onnx(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: str | Path,
    input_name: str = "input",
    output_names: tuple[str, ...] = ("output",),
    dynamic_batch: bool = True,
    dynamic_spatial: int | None = None,
) -> Path:
    """Write `module` (in eval mode) as one ONNX file with a dynamic batch dimension, and with dynamic
    height and width (multiples of `dynamic_spatial`) for fully convolutional models such as the detector."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    dims: dict[int, object] = {}
    if dynamic_batch:
        dims[0] = torch.export.Dim("batch", min=1, max=4096)
    if dynamic_spatial:
        dims[2] = dynamic_spatial * torch.export.Dim("h_blocks", min=2, max=4096 // dynamic_spatial)
        dims[3] = dynamic_spatial * torch.export.Dim("w_blocks", min=2, max=4096 // dynamic_spatial)
    dynamic = (dims,) if dims else None
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            external_data=False,
            input_names=[input_name],
            output_names=list(output_names),
            dynamic_shapes=dynamic,
            verbose=False,
        )
    program.save(str(path))
    return path


def onnx_ops(path: str | Path) -> list[str]:
    """Distinct operator types of an ONNX graph (QDQ models show QuantizeLinear/DequantizeLinear)."""
    import onnx

    model = onnx.load(str(path))
    return sorted({node.op_type for node in model.graph.node})


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over an iterable of input batches."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self) -> None:  # pragma: no cover - only called by calibration methods we do not use
        raise NotImplementedError


def nodes_of_modules(model_path: str | Path, modules: Sequence[str]) -> list[str]:
    """Names of the ONNX nodes that the dynamo exporter traced inside the given top-level torch modules
    (it records each node's module path in the `pkg.torch.onnx.name_scopes` metadata)."""
    import ast

    import onnx

    wanted = set(modules)
    names = []
    for node in onnx.load(str(model_path)).graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        if len(scopes) > 1 and scopes[1] in wanted:
            names.append(node.name)
    return names


def quantize_onnx(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Iterable[np.ndarray],
    input_name: str = "input",
    keep_float: Sequence[str] = (),
) -> Path:
    """Static int8 QDQ, per-channel weights (S8), uint8 activations, MinMax ranges from `calibration`
    (batches already preprocessed exactly as the runtime feeds the model), averaged over batches rather
    than the extremes of any one batch (`CalibMovingAverage`: fewer outlier-stretched ranges).

    `keep_float` names top-level torch modules left in float: the first convolution (its input is
    full-range pixels) and the embedding head are the layers whose rounding costs the most accuracy."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        excluded = nodes_of_modules(pre, keep_float) if keep_float else None
        quantize_static(
            str(pre),
            str(out_path),
            _Batches(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
            extra_options={"CalibMovingAverage": True},
        )
    return out_path
