"""Precision is chosen in the graph, not by builder flags (TensorRT 11 networks are strongly
typed): the export module runs in the chosen dtype, while the numerically fragile parts stay
float32 as the reference implementations keep them: layer/RMS norms (cast in, cast out),
softmax (transformers' Qwen/Mistral eager attention already upcasts it; BERT's does not, so
it is upcast here) and pooling + L2 normalisation (builder.families.pooling works in float32).

The graph's inputs and outputs stay float32 at every precision (cast in and out inside
the graph), so the runtime feeds float32 pixels and image rows to any artifact.

A new precision (int8, ...) is one more entry in PRECISIONS.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


@dataclass(frozen=True)
class Precision:
    name: str
    torch_dtype: str | None  # dtype the model body runs in; None keeps float32
    min_cosine: float  # parity gate against the float32 reference implementation
    description: str


PRECISIONS: dict[str, Precision] = {
    p.name: p for p in (
        # fp32 at SGLang's 1e-5 (builder/verify.py MIN_COSINE says what was measured).
        Precision("fp32", None, 0.99999, "float32 everywhere"),
        Precision("fp16", "float16", 0.999, "float16 body; norms, softmax, pooling in float32"),
        Precision("bf16", "bfloat16", 0.999, "bfloat16 body; norms, softmax, pooling in float32"),
        # CPU only: the fp32 export quantised afterwards (builder/quantize.py), whose gate
        # also asks a mean cosine of 0.99.
        Precision("int8", None, 0.97, "int8 weights, dynamic activations (ONNX Runtime CPU)"),
    )
}


def get(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"precision {name!r} is not supported; choose from "
                         f"{', '.join(PRECISIONS)}") from None


def _is_norm(module: Any) -> bool:
    import torch

    # LayerNorm, plus the RMSNorm classes of decoder families (Qwen3RMSNorm, MistralRMSNorm).
    return isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


def _float32_norm(norm: Any) -> Any:
    import torch

    class Float32Norm(torch.nn.Module):
        """Runs the wrapped norm in float32 and hands back the body's dtype."""

        def __init__(self) -> None:
            super().__init__()
            self.norm = norm.float()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(x.float()).to(x.dtype)

    return Float32Norm()


def _float32_io(body: Any, dtype: Any) -> Any:
    import torch

    class Float32IO(torch.nn.Module):
        """Floating inputs cast into the body's dtype and the output back to float32: the
        graph's I/O stays float32 at every precision (pixels, image rows, vectors)."""

        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            cast = [x.to(dtype) if x.is_floating_point() else x for x in inputs]
            return self.body(*cast).float()

    return Float32IO().eval()


def prepare(module: Any, precision: Precision) -> Any:
    """Cast an export module to the precision's dtype, norms kept in float32."""
    if precision.torch_dtype is None:
        return module
    import torch

    dtype = getattr(torch, precision.torch_dtype)
    module.to(dtype)
    for parent in list(module.modules()):
        if type(parent).__name__ == "Float32Norm":  # a body shared by two towers (CLIP):
            parent.norm.float()  # wrapped once, and kept float32 past the cast above
            continue
        for name, child in list(parent.named_children()):
            if _is_norm(child):
                setattr(parent, name, _float32_norm(child))
    return _float32_io(module.eval(), dtype)


@contextlib.contextmanager
def float32_softmax(precision: Precision) -> Iterator[None]:
    """While exporting/running a reduced-precision module, softmax computes in float32."""
    if precision.torch_dtype is None:
        yield
        return
    import torch.nn.functional as F

    original = F.softmax

    def softmax(x, dim=None, _stacklevel=3, dtype=None):  # type: ignore[no-untyped-def]
        return original(x.float(), dim=dim).to(x.dtype if dtype is None else dtype)

    F.softmax = softmax  # modeling code looks it up at call time: nn.functional.softmax
    try:
        yield
    finally:
        F.softmax = original


def unsupported_ops(onnx_path: str | Path, provider: str = "CPUExecutionProvider") -> list[str]:
    """The `op on dtype` pairs of a graph that ONNX Runtime has no kernel for.

    ONNX Runtime names only the first missing kernel when a session fails; here each node
    type is tried alone (a one-node graph with the node's own attributes and inferred input
    types), so the answer lists every op it cannot run.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    types = {v.name: v.type for v in (*model.graph.input, *model.graph.value_info,
                                      *model.graph.output)}
    types.update({t.name: onnx.helper.make_tensor_type_proto(t.data_type, None)
                  for t in model.graph.initializer})
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    missing: set[str] = set()
    tried: set[tuple[str, tuple[int, ...]]] = set()
    for node in model.graph.node:
        if node.op_type == "Constant" or not all(i in types for i in node.input if i):
            continue
        elems = tuple(types[i].tensor_type.elem_type for i in node.input if i)
        if (node.op_type, elems) in tried:
            continue
        tried.add((node.op_type, elems))
        if not _runs_alone(node, types, opset, provider, onnx, ort):
            names = sorted({onnx.helper.tensor_dtype_to_np_dtype(e).name
                            if e != onnx.TensorProto.BFLOAT16 else "bfloat16" for e in elems})
            missing.add(f"{node.op_type} on {'/'.join(names)} (opset {opset})")
    return sorted(missing)


def _runs_alone(node, types, opset, provider, onnx, ort) -> bool:  # type: ignore[no-untyped-def]
    inputs = [onnx.helper.make_value_info(f"in{k}", types[name])
              for k, name in enumerate(node.input) if name]
    outputs = [onnx.helper.make_value_info(f"out{k}", onnx.TypeProto())
               for k, _ in enumerate(node.output)]
    names = [f"in{k}" if name else "" for k, name in enumerate(node.input)]  # keep gaps
    single = onnx.helper.make_node(node.op_type, names,
                                   [v.name for v in outputs], domain=node.domain)
    single.attribute.extend(node.attribute)
    graph = onnx.helper.make_graph([single], "probe", inputs, outputs)
    probe = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    try:
        ort.InferenceSession(probe.SerializeToString(), providers=[provider])
    except Exception as exc:  # onnxruntime raises untyped errors; only NOT_IMPLEMENTED counts
        return "NOT_IMPLEMENTED" not in str(exc)
    return True
