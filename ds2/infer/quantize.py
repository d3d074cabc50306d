"""int8 weights for exported ONNX graphs (`ds2 export --quantize int8`), and their metadata.

What ONNX Runtime can run in int8 runs in int8: its dynamic quantization
(`onnxruntime.quantization.quantize_dynamic`) turns MatMul and Gemm into int8 products with
activations quantized per call, and LSTM nodes into DynamicQuantizeLSTM. It has no int8 GRU or
simple RNN, and its ConvInteger is slower than the float32 Conv on x86; so GRU and RNN weights
(most of a DS2 model) are stored as int8 with one scale per output row, restored by a Cast and a
Mul that every onnxruntime session folds into constants when it loads the graph (sherpa-onnx's
too; a DequantizeLinear would stay in the graph, kept for QDQ fusions, and run at every call).
So a GRU model's file is about a quarter of the float32 one at float32 speed; an LSTM model's is
also faster (`docs/benchmarks.md`).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from ds2.atomic import write_atomic

DYNAMIC_OPS = ["MatMul", "Gemm", "LSTM"]  # what quantize_dynamic runs in int8 (not Conv: ConvInteger is slower)
WEIGHT_ONLY_OPS = {"GRU": (1, 2), "RNN": (1, 2)}  # node type: inputs that are weights (W, R), computed in float32


def quantize_int8(path: str | Path) -> None:
    """Replace the ONNX graph `path` by its int8 version (in place, atomically)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".quantize") as tmp:
        quantized = Path(tmp) / "int8.onnx"
        # onnxruntime's quantizer logs what it leaves alone (the GRU nodes, shapes it cannot infer)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(path, quantized, weight_type=QuantType.QInt8, op_types_to_quantize=DYNAMIC_OPS)
        finally:
            root.setLevel(level)
        model = onnx.load(str(quantized))
    store_weights_int8(model)
    write_atomic(path, lambda out: onnx.save(model, str(out)))


def int8_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scales) of `w` (..., rows, columns), one symmetric scale per row:
    w ~ values * scales, within half a step of the row's largest magnitude / 127."""
    scales = np.abs(w).max(axis=-1, keepdims=True) / 127.0
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    return np.clip(np.rint(w / scales), -127, 127).astype(np.int8), scales


def store_weights_int8(model) -> int:
    """Store the weight initializers of `model`'s GRU and RNN nodes as int8 with per-row scales,
    each restored by Cast + Mul (folded at session load); returns how many were replaced."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    new_nodes, replaced = [], 0
    for node in graph.node:
        for index in WEIGHT_ONLY_OPS.get(node.op_type, ()):
            name = node.input[index] if index < len(node.input) else ""
            if name not in initializers or consumers.get(name) != 1:
                continue
            values, scales = int8_rows(numpy_helper.to_array(initializers[name]).astype(np.float32))
            graph.initializer.remove(initializers[name])
            graph.initializer.extend([numpy_helper.from_array(values, f"{name}_int8"),
                                      numpy_helper.from_array(scales, f"{name}_scale")])
            new_nodes += [helper.make_node("Cast", [f"{name}_int8"], [f"{name}_float"], to=TensorProto.FLOAT),
                          helper.make_node("Mul", [f"{name}_float", f"{name}_scale"], [name])]
            replaced += 1
    for n in reversed(new_nodes):  # before their consumers: the graph stays topologically sorted
        graph.node.insert(0, n)
    return replaced


def set_metadata(path: str | Path, metadata: dict[str, str]) -> None:
    """Set the metadata_props `metadata` of the ONNX graph `path` (in place, atomically)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=str(value))
    write_atomic(path, lambda out: onnx.save(model, str(out)))
