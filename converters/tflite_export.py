"""TFLite export with litert-torch (NHWC input, no transposes left in the graph) and int8 quantization with
ai-edge-quantizer (`static_wi8_ai8`: int8 weights and activations, full-integer including the input).

Model-agnostic, like `onnx_export`. Run the results with `ai-edge-litert`, never tflite-runtime (numpy<2).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch


def export_tflite(module: torch.nn.Module, example_nchw: torch.Tensor, path: str | Path) -> Path:
    """Write `module` as a float32 TFLite file taking NHWC input (batch fixed to the example's).

    `to_channel_last_io` wraps the module with an NHWC->NCHW permute at the input, which the converter folds
    into the first convolution, so the graph has no TRANSPOSE op and apps feed camera-order pixels."""
    import litert_torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = litert_torch.to_channel_last_io(module.eval(), args=[0]).eval()
    example_nhwc = example_nchw.permute(0, 2, 3, 1).contiguous()
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        edge = litert_torch.convert(wrapped, (example_nhwc,))
    edge.export(str(path))
    return path


def _signature(path: Path) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(path)).get_signature_list()
    key = next(iter(signatures))
    return key, signatures[key]["inputs"][0]


def grouped_extremes(group: int) -> Callable[[dict, dict], dict]:
    """A calibration update for ai-edge-quantizer: the range of a tensor is the mean, over consecutive
    groups of `group` samples, of each group's min and max.

    The quantizer's default (an exponential moving average with factor 0.95 over single samples) follows
    the last few dozen samples and keeps ranges narrow; this is onnxruntime's MinMax-with-moving-average
    over batches instead: wider, steadier ranges from the same calibration faces."""

    def update(qsv: dict, new: dict) -> dict:
        n_groups, k = qsv.get("groups", 0), qsv.get("k", 0) + 1
        gmin = np.minimum(qsv["gmin"], new["min"]) if "gmin" in qsv else new["min"]
        gmax = np.maximum(qsv["gmax"], new["max"]) if "gmax" in qsv else new["max"]
        smin, smax = qsv.get("smin", 0.0), qsv.get("smax", 0.0)
        if k == group:
            smin, smax, n_groups = smin + gmin, smax + gmax, n_groups + 1
            return {
                "smin": smin,
                "smax": smax,
                "groups": n_groups,
                "k": 0,
                "min": smin / n_groups,
                "max": smax / n_groups,
            }
        return {
            "smin": smin,
            "smax": smax,
            "groups": n_groups,
            "k": k,
            "gmin": gmin,
            "gmax": gmax,
            "min": (smin + gmin) / (n_groups + 1),
            "max": (smax + gmax) / (n_groups + 1),
        }

    return update


def quantize_tflite(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Iterable[np.ndarray],
    keep_float: Sequence[str] = (),
    group: int = 8,
) -> Path:
    """int8 weights and activations (`static_wi8_ai8`), ranges from `calibration` (NHWC float batches as the
    runtime feeds the float model, run one sample at a time since the exported batch is 1) combined by
    `grouped_extremes(group)`.

    `keep_float` names top-level torch modules left in float, as for ONNX: litert-torch names each
    tensor after its module path (`..._stem/...`, `Linear_embed;...`), which the recipe's regex matches."""
    from ai_edge_quantizer import algorithm_manager, calibrator, qtyping, quantizer, recipe, recipe_manager

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    key, input_name = _signature(fp32_path)
    samples = [
        {input_name: np.ascontiguousarray(x[None], np.float32)} for batch in calibration for x in batch
    ]
    rp = recipe.static_wi8_ai8()
    if keep_float:
        rp = [
            *rp,
            {
                "regex": f".*_({'|'.join(keep_float)})[/;].*",
                "operation": qtyping.TFLOperationName.ALL_SUPPORTED,
                "algorithm_key": algorithm_manager.AlgorithmName.NO_QUANTIZE,
            },
        ]
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(rp)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cal = calibrator.Calibrator(
            fp32_path.read_bytes(), num_threads=1, qsv_update_func=grouped_extremes(group)
        )
        cal.calibrate({key: samples}, manager)
        ranges = {name: {"min": q["min"], "max": q["max"]} for name, q in cal.get_model_qsvs().items()}
        qt = quantizer.Quantizer(str(fp32_path))
        qt.load_quantization_recipe(rp)
        qt.quantize(ranges).export_model(str(out_path), overwrite=True)
    return out_path


def tflite_ops(path: str | Path) -> list[str]:
    """Distinct builtin operators of a TFLite graph (read without the XNNPACK delegate, which would hide
    them behind one DELEGATE node)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})
