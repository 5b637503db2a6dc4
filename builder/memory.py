"""Device memory a TensorRT engine needs per optimisation profile, estimated from the model's
widths (config.json) and the profile's box, and the check that refuses, before anything is
built, a build whose largest profile cannot fit the GPU it is for.

Pure. The estimate is runtime/backends/activations.py's formula (the server's start uses it
too) at each profile's box, attention unfused where attention_fused says so (fp32). Layers
reuse the same memory, so it does not grow with depth; the weights do. Checked against TensorRT for RTX 1.7's own
figure (its builder's "Total Activation Memory", which builder/compile.py records; it sizes
each profile at its opt shape): gme-Qwen2-VL-2B's language model at fp32, 21 x 768 tokens:
4.88e9 bytes measured, 6.64e9 estimated; 11 x 1416: 5.56e9 measured, 8.35e9 estimated;
Qwen3-Embedding-4B's widths, 1 x 24576 tokens: fp32 277.8e9 measured, 317.0e9 estimated,
fp16 3.90e9 measured, 3.88e9 estimated. Unfused fp32 attention costs 7 (gme) to 14 (Qwen3)
bytes per head x seq^2 cell there; the estimate takes 16, an upper bound.
TensorRT gives no per-profile figure ahead of time, so each profile's max box gets this
estimate. A context holds one profile's activations at a time; the server runs `CONTEXTS`
contexts (its --trt-contexts default), each with its own.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from builder.profiles import RowsAt, graph_profiles
from models.spec import ModelSpec
from runtime.backends.activations import activation_bytes, score_cells
from runtime.backends.trt_plan import BATCH, SEQUENCE, Profile, axis_extents
from runtime.artifact.manifest import BuildLimits

GIB = 1 << 30
# --gpu-memory-gib when it is not given and no GPU is visible: TensorRT for RTX plans run on
# RTX-class cards, the largest GeForce (RTX 5090) has 32 GB; a larger card: raise it.
RTX_DEFAULT_GIB = 32.0
CONTEXTS = 2  # the server's --trt-contexts default: each context holds its own activations
BODY_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 4}
FUSED = ("fp16", "bf16")  # precisions whose attention TensorRT fuses (attention_fused)
CHECKPOINT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class Widths:
    """One tower's transformer widths, from config.json."""

    hidden: int
    intermediate: int
    heads: int
    layers: int
    head: int = 0  # float32 values per token past the body (head_values)


@dataclass(frozen=True)
class Box:
    """A profile's largest input, as the attention sees it: rows of `seq` tokens each."""

    tower: str
    profile: str
    rows: int
    seq: int
    lo: int = 1  # the bucket's shortest row (its rows are at most budget // lo)


@dataclass(frozen=True)
class Need:
    box: Box
    activations: int  # bytes, one context
    scores: int  # bytes of one float32 attention-score tensor; 0: attention fused

    def total(self, weights: int) -> int:
        return weights + CONTEXTS * self.activations

    def line(self) -> str:
        b = self.box
        attention = (f"unfused: {self.scores / GIB:.2f} GiB of float32 attention scores"
                     if self.scores else "attention fused")
        return (f"{b.tower} {b.profile}: {b.rows} rows x {b.seq} tokens = "
                f"{b.rows * b.seq} tokens, activations {self.activations / GIB:.2f} GiB "
                f"per context ({attention})")


def _section(config: Mapping[str, Any], tower: str) -> Mapping[str, Any]:
    key = "vision_config" if tower == "image" else "text_config"
    return config.get(key) or config


def widths(config: Mapping[str, Any], tower: str) -> Widths:
    """BERT, the decoders, CLIP's towers and Qwen2-VL's language model and vision tower."""
    c = _section(config, tower)
    hidden = int(c.get("embed_dim") or c["hidden_size"])  # Qwen2-VL vision: embed_dim
    inter = c.get("intermediate_size") or hidden * int(c.get("mlp_ratio", 4))
    heads = int(c.get("num_attention_heads") or c["num_heads"])
    layers = int(c.get("num_hidden_layers") or c.get("depth") or 1)
    return Widths(hidden, int(inter), heads, layers)


def tower_widths(config: Mapping[str, Any], tower: str, spec: ModelSpec) -> Widths:
    """widths() with the text tower's head values (SPLADE's vocabulary logits)."""
    w = widths(config, tower)
    return dataclasses.replace(w, head=head_values(spec)) if tower == "text" else w


def attention_fused(precision: str) -> bool:
    """Whether TensorRT fuses the exported attention (no seq^2 scores in memory): measured
    on TensorRT for RTX 1.7 at fp16 (Qwen3-Embedding-4B's widths, 1 x 24576 tokens: 3.63 GiB
    of activations at fp16, 258.69 GiB at fp32). bf16 is taken to behave as fp16 (not
    measured); fp32 is not fused."""
    return precision in FUSED


def head_values(spec: ModelSpec) -> int:
    """float32 values per token a head holds past the body: SPLADE's logits over the
    vocabulary and their log-saturated copy before the pooling (2 x vocab, 244 KB a token
    at 30522), an upper bound; 0 for heads of hidden width. TensorRT for RTX 1.7's figure on
    bench/sparse.py's SPLADE (all-MiniLM's body, 30522 words), at its largest opt box
    42 x 384: fp16 2.13e9 bytes measured, 4.33e9 estimated (0.40e9 without this term);
    fp32 5.05e9 measured, 5.92e9 estimated (1.98e9 without)."""
    return 2 * spec.dims if spec.sparse_activation else 0


def activation_need(box: Box, w: Widths, precision: str) -> Need:
    fused = attention_fused(precision)
    tokens = box.rows * box.seq
    total = activation_bytes(tokens, box.seq, w.hidden, w.intermediate, w.heads,
                             BODY_BYTES[precision], fused, w.head)
    return Need(box, total, 0 if fused else score_cells(tokens, box.seq, w.heads) * 4)


def room(budget_gib: float, weights: int) -> int:
    """Bytes each execution context may hold for activations within a GPU budget; 0: none
    stated (no sizing)."""
    return max(0, (int(budget_gib * GIB) - weights) // CONTEXTS) if budget_gib else 0


def unfused_rows(w: Widths, precision: str, room_bytes: int) -> RowsAt | None:
    """Where attention is not fused, rows of `seq` tokens that fit `room_bytes` (its seq^2
    scores grow faster than the token budget shrinks a box); None where attention is fused
    or no budget is stated: the token budget alone bounds the boxes."""
    if attention_fused(precision) or room_bytes <= 0:
        return None

    def rows_at(seq: int) -> int:
        return room_bytes // activation_need(Box("", "", 1, seq), w, precision).activations
    return rows_at


def fit_max_len(rows_at: RowsAt, max_len: int) -> int:
    """The longest input (a multiple of 8, or max_len itself) of which one row fits; 0: not
    even 8 tokens."""
    if rows_at(max_len) >= 1:
        return max_len
    lo, hi = 0, max_len // 8  # in units of 8 tokens: lo fits (or is 0), hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rows_at(8 * mid) >= 1 else (lo, mid)
    return 8 * lo


def checkpoint_weights(checkpoint: Path, config: Mapping[str, Any], precision: str) -> int:
    """Bytes of the weights at the build's precision, from the checkpoint's files."""
    files = [*checkpoint.glob("*.safetensors"), *checkpoint.glob("*.bin")]
    stored = sum(f.stat().st_size for f in files)
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "float32")
    return stored * BODY_BYTES[precision] // CHECKPOINT_BYTES.get(dtype, 4)


def read_config(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _fix(need: Need, w: Widths, precision: str, room: int) -> str:
    """What to change so this bucket's box fits `room` bytes per context."""
    one = activation_need(Box("", "", 1, need.box.seq, need.box.lo), w, precision).activations
    rows = room // one
    if rows < 1:
        return (f"one row of {need.box.seq} tokens needs {one / GIB:.1f} GiB: "
                + ("raise --gpu-memory-gib (a larger GPU)" if attention_fused(precision)
                   else "build fp16/bf16 or raise --gpu-memory-gib"))
    if need.box.lo <= 1:
        return f"lower --max-batch-size to {rows} (and the server's too)"
    return (f"lower --max-batch-tokens to {rows * need.box.lo} (rows of >= {need.box.lo} "
            "tokens; the server's too)")


def workspace_mib(activations: int) -> int:
    """The builder's memory pool for a graph whose largest profile needs `activations` bytes:
    TensorRT for RTX refuses to build when its compiled graph's activations exceed the pool
    (plus the weights), as gme's fp32 1025..1800 profile did at the old fixed 4096 MiB."""
    return max(4096, -(-activations // (1 << 30)) * 1024)


def check_budget(needs: list[tuple[Need, Widths]], weights: int, precision: str,
                 budget_gib: float) -> str | None:
    """One line naming the largest profile that does not fit and what to change (fixing it
    fixes the smaller ones); None: every profile fits."""
    budget = int(budget_gib * GIB)
    if weights >= budget:
        return (f"the {precision} weights alone need {weights / GIB:.1f} GiB, more than the "
                f"--gpu-memory-gib {budget_gib:g} budget: build fp16/bf16 or raise the budget")
    over = [(n, w) for n, w in needs if n.total(weights) > budget]
    for need, w in sorted(over, key=lambda nw: -nw[0].activations)[:1]:
        fix = _fix(need, w, precision, (budget - weights) // CONTEXTS)
        return (f"profile {need.box.tower}/{need.box.profile} needs "
                f"{need.total(weights) / GIB:.1f} GiB ({weights / GIB:.1f} GiB weights + "
                f"{CONTEXTS} contexts x {need.activations / GIB:.1f} GiB for {need.box.rows} "
                f"rows x {need.box.seq} tokens), over the --gpu-memory-gib {budget_gib:g} "
                f"budget: {fix}")
    return None


def graph_boxes(tower: str, profiles: Sequence[Profile], inputs: Mapping[str, Sequence[Any]],
                spec: ModelSpec) -> list[Box]:
    """Each profile's box: (rows, tokens per row) as the graph's attention sees them."""
    boxes = []
    for p in profiles:
        seq, patches = (axis_extents([p], inputs, a) for a in (SEQUENCE, "patches"))
        if seq:
            boxes.append(Box(tower, p.name, axis_extents([p], inputs, BATCH)[0], seq[0],
                             p.min_seq))
        elif patches:  # packed patches: one sequence, attention segmented by a mask
            boxes.append(Box(tower, p.name, 1, patches[0]))
        else:  # whole images of max_patches tokens each
            images = axis_extents([p], inputs, BATCH)[0]
            boxes.append(Box(tower, p.name, images, spec.vision.max_patches if spec.vision
                             else 1))
    return boxes


def spec_inputs(spec: ModelSpec) -> dict[str, dict[str, tuple[int | str, ...]]]:
    """Each tower's inputs by their axes, as the export will name them (for the check that
    runs before exporting)."""
    towers: dict[str, dict[str, tuple[int | str, ...]]] = {
        "text": {name: (BATCH, SEQUENCE) for name in spec.inputs}}
    if spec.vision is not None:
        side = spec.vision.image_size
        towers["image"] = ({"pixel_values": ("patches", 1)} if not side
                           else {"pixel_values": (BATCH, 3, side, side)})
    return towers


def needs(config: Mapping[str, Any], spec: ModelSpec, limits: BuildLimits,
          precision: str, room_bytes: int = 0) -> list[tuple[Need, Widths]]:
    """Every tower's every profile, with its activation estimate; `room_bytes` sizes
    unfused attention's profiles (unfused_rows)."""
    out = []
    for tower, inputs in spec_inputs(spec).items():
        w = tower_widths(config, tower, spec)
        profiles = graph_profiles(inputs, spec, limits, unfused_rows(w, precision, room_bytes))
        for box in graph_boxes(tower, profiles, inputs, spec):
            out.append((activation_need(box, w, precision), w))
    return out


def _opt_extent(profile: Profile, inputs: Mapping[str, Sequence[Any]], axis: str) -> int:
    for name, dims in inputs.items():
        if axis in dims:
            return dict(profile.shapes)[name].opt[list(dims).index(axis)]
    return 0


def attention_evidence(activation: int, profiles: Sequence[Profile],
                       inputs: Mapping[str, Sequence[Any]], heads: int,
                       image_tokens: int = 0) -> str:
    """What TensorRT's activation figure says of the attention, against one float32
    rows x heads x seq^2 score tensor at the largest profile's opt shape (where TensorRT for
    RTX sizes it): "fused" when the figure is smaller (no such tensor exists), "materialised"
    when it holds two or more and one is at least 1/16 of it, "undetermined" otherwise (the
    other tensors could explain it), "unknown" without a figure. `image_tokens`: tokens per image of a graph over whole
    images (CLIP's (batch, 3, H, W))."""
    largest = 0
    for p in profiles:
        seq = (_opt_extent(p, inputs, SEQUENCE) or _opt_extent(p, inputs, "patches")
               or image_tokens)
        rows = 1 if _opt_extent(p, inputs, "patches") else _opt_extent(p, inputs, BATCH) or 1
        largest = max(largest, rows * heads * seq * seq * 4)
    if not largest or not activation:
        return "unknown"
    if activation < largest:
        return "fused"
    # twice the tensor, and the tensor a fair part of the figure (not a short graph's crumb)
    held = activation >= 2 * largest and largest * 16 >= activation
    return "materialised" if held else "undetermined"
