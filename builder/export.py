"""Checkpoint -> ONNX with dynamic batch and sequence axes, pooling and L2 norm in-graph.

The TorchScript exporter (dynamo=False) with eager attention: it exports in seconds and
ONNX Runtime fuses its attention and layer norm (BENCHMARKS.md, design).
"""

from __future__ import annotations

import gc
import shutil
from pathlib import Path
from typing import Any

from builder import families
from builder import precision as precisions
from models.family import Family
from models.spec import ModelSpec
from runtime.artifact.manifest import Graph

OPSET = 17
DATA_ALIGNMENT = 4096  # bytes; offsets of tensors in model.onnx.data


def export_graphs(family: Family, checkpoint: str | Path, spec: ModelSpec, out: Path,
                  precision: str = "fp32", external_data: bool = False) -> dict[str, Graph]:
    """Every graph of the family into `out` (model.onnx for one, <tower>.onnx for several),
    in the precision's dtype (norms, softmax, pooling and the graph's I/O in float32), with
    its input shapes, dynamic axes named: what TensorRT profiles are built from."""
    prec = precisions.get(precision)
    towers = families.graphs(family, checkpoint, spec)
    # Pooled (batch, dims) vectors, unless the family's graph says otherwise (bge-m3: per token).
    shaped = getattr(families.exporter(family), "output_shape", None)
    output = shaped(spec) if shaped else ["batch", spec.dims]
    graphs: dict[str, Graph] = {}
    for name in list(towers):
        module, input_axes, sample = towers.pop(name)  # dropped once exported (7B bodies)
        file = "model.onnx" if not towers and not graphs else f"{name}.onnx"
        module = precisions.prepare(module, prec)
        with precisions.float32_softmax(prec):
            path = _export_file(module, out, file, input_axes, sample, external_data,
                                {i: a for i, a in enumerate(output) if isinstance(a, str)})
        del module
        shapes = {input_name: [axes.get(i, int(d)) for i, d in enumerate(tensor.shape)]
                  for (input_name, axes), tensor in zip(input_axes.items(), sample)}
        graphs[name] = Graph(path.name, shapes, {"embeddings": output})
    return graphs


def _export_file(module: Any, out: Path, file: str, input_axes: dict[str, dict[int, str]],
                 sample: tuple[Any, ...], external_data: bool,
                 output_axes: dict[int, str] | None = None) -> Path:
    """Export into `out`/file; weights go to <file>.data past protobuf's 2 GB limit (4-7B
    decoders) or when `external_data` forces it."""
    scratch = out / ".export"
    scratch.mkdir()
    export_graph(module, scratch / file, input_axes, sample, output_axes)
    gc.collect()  # the traced module's copies are gone before save_external loads weights
    path = out / file
    # Past 2 GB the TorchScript exporter silently writes one file per initializer next to
    # the graph; either way we publish one graph and (if external) one data file.
    spilled = any(p.name != file for p in scratch.iterdir())
    if external_data or spilled:
        save_external(scratch / file, path)
    else:
        (scratch / file).rename(path)
    shutil.rmtree(scratch)
    return path


def export_graph(module: Any, path: Path, input_axes: dict[str, dict[int, str]],
                 sample: tuple[Any, ...], output_axes: dict[int, str] | None = None) -> Path:
    """One tower -> ONNX: inputs named and dynamic as given, output `embeddings` (batch, d),
    or with the dynamic axes `output_axes` names (bge-m3: batch, sequence)."""
    import torch

    axes = {**input_axes, "embeddings": output_axes or {0: "batch"}}
    with torch.inference_mode():
        torch.onnx.export(
            module,
            sample,
            str(path),
            input_names=list(input_axes),
            output_names=["embeddings"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def save_external(source: Path, path: Path) -> Path:
    """Rewrite an exported graph with its weights in one `<name>.data` file beside it.

    Streams one initializer at a time (from the graph, or from the per-tensor files torch
    spilled), so a 7B checkpoint is never held whole in memory here.
    """
    import onnx
    from onnx.external_data_helper import (load_external_data_for_tensor, set_external_data,
                                           uses_external_data)

    model = onnx.load(str(source), load_external_data=False)
    data = path.parent / external_data_name(path)
    with data.open("wb") as out:
        for tensor in model.graph.initializer:
            if uses_external_data(tensor):
                load_external_data_for_tensor(tensor, str(source.parent))
            if len(tensor.raw_data) < 1024:  # scalars and shapes stay in the graph
                continue
            out.write(b"\0" * (-out.tell() % DATA_ALIGNMENT))  # page-aligned: ORT can mmap
            offset = out.tell()
            out.write(tensor.raw_data)
            set_external_data(tensor, location=data.name, offset=offset,
                              length=len(tensor.raw_data))
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
    onnx.save_model(model, str(path))
    return path


def external_data_name(path: Path) -> str:
    return f"{path.name}.data"


def save_tokenizer(checkpoint: str | Path, out: Path, spec: ModelSpec | None = None) -> Path:
    """The model's own fast tokenizer as tokenizer.json, padding and truncation off (with
    the spec's required EOS, see builder.families.hf_tokenizer)."""
    from builder.families.hf_tokenizer import load_tokenizer

    tokenizer = load_tokenizer(checkpoint, spec)
    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    path = out / "tokenizer.json"
    backend.save(str(path))
    return path


def copy_preprocessor(checkpoint: str | Path, out: Path) -> Path | None:
    """The image preprocessing constants the runtime applies in numpy (image families)."""
    source = Path(checkpoint) / "preprocessor_config.json"
    if not source.is_file():
        return None
    target = out / source.name
    target.write_bytes(source.read_bytes())
    return target
