"""FLOPs and bytes per token of a transformer tower, from its config.json, and a roofline.

Pure arithmetic (no torch, no numpy): the CPU report uses it for "how close to this CPU's
limit", the GPU benchmark for each family's compute/memory bound on the card's peak.
Counts are of multiply-adds x 2 in the matmuls (projections, MLP, attention scores and
mixing); layer norms, softmax and activations are a few percent and left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

DECODERS = ("qwen3", "qwen2", "mistral", "llama")


@dataclass(frozen=True)
class Tower:
    name: str  # "text" or "vision"
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    gated_mlp: bool = False  # SwiGLU: gate, up and down matrices instead of up and down
    causal: bool = False  # a token attends to the ones before it only: half the scores
    vocab: int = 0  # embedding rows: weight bytes, a lookup rather than a matmul

    @property
    def layer_params(self) -> int:
        """Matmul weights of one layer (q, k, v, o, MLP)."""
        attn = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        return attn + (3 if self.gated_mlp else 2) * self.hidden * self.intermediate

    @property
    def params(self) -> int:
        return self.layers * self.layer_params + self.vocab * self.hidden

    def flops_per_token(self, seq_len: int) -> float:
        """Forward FLOPs for one token of a `seq_len`-token sequence."""
        attended = seq_len / 2 if self.causal else seq_len
        scores_and_mix = 2 * 2 * attended * self.heads * self.head_dim
        return self.layers * (2 * self.layer_params + scores_and_mix)

    def activation_bytes_per_token(self, dtype_bytes: int) -> int:
        """What the matmuls of one token read and write across all layers (no reuse)."""
        qkv_out = (self.heads + 2 * self.kv_heads) * self.head_dim
        up_out = (2 if self.gated_mlp else 1) * self.intermediate
        per_layer = (4 * self.hidden + qkv_out + self.heads * self.head_dim
                     + up_out + self.intermediate + self.hidden)
        return self.layers * per_layer * dtype_bytes


def _common(cfg: Mapping[str, Any], name: str, **overrides: Any) -> Tower:
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    values: dict[str, Any] = dict(name=name, layers=int(cfg["num_hidden_layers"]), hidden=hidden, heads=heads,
                  kv_heads=int(cfg.get("num_key_value_heads") or heads),
                  head_dim=int(cfg.get("head_dim") or hidden // heads),
                  intermediate=int(cfg["intermediate_size"]), vocab=int(cfg.get("vocab_size", 0)))
    values.update(overrides)
    return Tower(**values)


def _qwen2_vl_vision(cfg: Mapping[str, Any]) -> Tower:
    dim = int(cfg["embed_dim"])
    heads = int(cfg["num_heads"])
    return Tower("vision", int(cfg["depth"]), dim, heads, heads, dim // heads,
                 int(dim * float(cfg.get("mlp_ratio", 4))))


def towers(config: Mapping[str, Any]) -> list[Tower]:
    """config.json -> its towers; unknown model types raise ValueError naming the known ones."""
    kind = str(config.get("model_type", ""))
    if kind in ("bert", "roberta", "xlm-roberta"):
        return [_common(config, "text")]
    if kind in DECODERS:
        return [_common(config, "text", gated_mlp=True, causal=True)]
    if kind == "clip":
        return [_common(config["text_config"], "text", causal=True),
                _common(config["vision_config"], "vision")]
    if kind == "qwen2_vl":
        text = config.get("text_config") or config
        return [_common(text, "text", gated_mlp=True, causal=True),
                _qwen2_vl_vision(config["vision_config"])]
    raise ValueError(f"no FLOP model for model_type {kind!r}; known: bert, roberta, "
                     f"xlm-roberta, {', '.join(DECODERS)}, clip, qwen2_vl")


def vision_tokens(config: Mapping[str, Any]) -> int:
    """Patch tokens of one image at the tower's native size (CLIP: + the CLS token)."""
    vision = config["vision_config"]
    if config.get("model_type") == "clip":
        return (int(vision["image_size"]) // int(vision["patch_size"])) ** 2 + 1
    # Qwen2-VL takes any size; 448 x 448 at 14-pixel patches is a typical document image.
    return (448 // int(vision.get("patch_size", 14))) ** 2


@dataclass(frozen=True)
class Roofline:
    flops: float  # per batch
    bytes: float  # per batch
    seconds: float  # the bound: the slower of compute and memory traffic
    bound: str  # "compute" or "memory"
    tokens_per_s: float

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes


def roofline(tower: Tower, batch: int, seq_len: int, peak_flops: float, bandwidth: float,
             dtype_bytes: int = 2) -> Roofline:
    """Best-case time of one (batch, seq_len) forward: weights read once, activations once."""
    tokens = batch * seq_len
    flops = tokens * tower.flops_per_token(seq_len)
    traffic = tower.params * dtype_bytes + tokens * tower.activation_bytes_per_token(dtype_bytes)
    compute_s, memory_s = flops / peak_flops, traffic / bandwidth
    seconds = max(compute_s, memory_s)
    return Roofline(flops, traffic, seconds, "compute" if compute_s >= memory_s else "memory",
                    tokens / seconds)


def fraction_of_peak(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Achieved FLOP rate as a fraction of a peak (or of a measured matmul rate)."""
    return tokens_per_s * flops_per_token / peak_flops
