"""Opt-in int8 for CPU: dynamic quantisation of the exported fp32 graph, and its quality gate.

Weights are stored as int8 with one scale per output channel; activations are quantised
per batch at run time (ONNX Runtime's MatMulInteger path). On CPUs without VNNI, ONNX
Runtime's default int8 settings saturate the u8 x s8 products and drift badly;
`reduce_range` (7-bit weights) avoids the overflow and per-channel scales keep the error
small. The MLP down-projections of the first and last layer stay fp32: their inputs carry
the largest activation outliers (what each choice gained: BENCHMARKS.md, design). The gate
refuses an artifact that drifts anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MIN_MEAN_COSINE = 0.99  # to the fp32 reference, over the probe set
MIN_COSINE = 0.97


@dataclass(frozen=True)
class Int8Gate:
    min_cosine: float = MIN_COSINE
    mean_cosine: float = MIN_MEAN_COSINE

    def failure(self, min_cosine: float, mean_cosine: float) -> str | None:
        """Why an int8 artifact is refused, or None when it passes."""
        if mean_cosine >= self.mean_cosine and min_cosine >= self.min_cosine:
            return None
        return (f"int8 quality gate failed: cosine to the fp32 reference min {min_cosine:.4f} "
                f"(needs >= {self.min_cosine}), mean {mean_cosine:.4f} (needs >= "
                f"{self.mean_cosine}); build with --precision fp32 instead")


GATE = Int8Gate()


# A layer's MLP down-projection as the TorchScript exporter names it (BERT, decoders, CLIP).
_MLP_DOWN = re.compile(r"/layers?\.(\d+)/(?:output/dense|mlp/down_proj|mlp/fc2)/MatMul$")


def kept_fp32(matmul_names: list[str]) -> list[str]:
    """The MLP down-projection MatMuls of the first and last layer."""
    layers = {name: int(m.group(1)) for name in matmul_names if (m := _MLP_DOWN.search(name))}
    if not layers:
        return []
    edges = {min(layers.values()), max(layers.values())}
    return [name for name, layer in layers.items() if layer in edges]


def quantize_int8(fp32_path: Path) -> Path:
    """fp32 ONNX -> `model.int8.onnx` beside it; the fp32 graph is removed (not served)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    keep = kept_fp32([node.name for node in graph.node if node.op_type == "MatMul"])
    out = fp32_path.with_name("model.int8.onnx")
    quantize_dynamic(fp32_path, out, per_channel=True, reduce_range=True,
                     weight_type=QuantType.QInt8, nodes_to_exclude=keep)
    fp32_path.unlink()
    return out
