"""GPU benchmark: the TensorRT backend per profile and batch size, against PyTorch fp16
eager on the same card, next to a roofline estimate for the model and for every family.

    python -m bench.gpu --artifact artifacts/bge-large-en-v1.5 [--batches 1,8,32,128]

Needs a CUDA GPU, TensorRT and torch (pip install -e '.[build,tensorrt]') and an artifact
built with a TensorRT plan. Importing this module needs none of them: the heavy imports
are inside the functions that run on the GPU, and the planning and roofline maths below
are pure (unit-tested on CPU machines). `--roofline-only` prints the estimates without a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bench import roofline
from bench.stats import percentile_ms

# Dense fp16/bf16 tensor-core FLOP/s and memory bandwidth (bytes/s), from NVIDIA's data
# sheets; matched as substrings of the device name, most specific first.
GPU_PEAKS: tuple[tuple[str, float, float], ...] = (
    ("H200", 989e12, 4.8e12), ("H100 PCIe", 756e12, 2.0e12), ("H100", 989e12, 3.35e12),
    ("A100", 312e12, 2.0e12), ("L40S", 362e12, 0.864e12), ("L4", 121e12, 0.3e12),
    ("A10", 125e12, 0.6e12), ("T4", 65e12, 0.32e12),
)
# One representative config per family (hub sizes), for the per-family roofline table.
FAMILY_CONFIGS: dict[str, dict] = {
    "bert (bge-large-en-v1.5)": {"model_type": "bert", "hidden_size": 1024,
                                 "num_attention_heads": 16, "intermediate_size": 4096,
                                 "num_hidden_layers": 24, "vocab_size": 30522,
                                 "max_position_embeddings": 512},
    "qwen3 (Qwen3-Embedding-4B)": {"model_type": "qwen3", "hidden_size": 2560,
                                   "num_attention_heads": 32, "num_key_value_heads": 8,
                                   "head_dim": 128, "intermediate_size": 9728,
                                   "num_hidden_layers": 36, "vocab_size": 151665},
    "gte-qwen2 (gte-Qwen2-7B-instruct)": {"model_type": "qwen2", "hidden_size": 3584,
                                          "num_attention_heads": 28, "num_key_value_heads": 4,
                                          "intermediate_size": 18944, "num_hidden_layers": 28,
                                          "vocab_size": 151646},
    "e5-mistral (e5-mistral-7b-instruct)": {"model_type": "mistral", "hidden_size": 4096,
                                            "num_attention_heads": 32,
                                            "num_key_value_heads": 8, "intermediate_size": 14336,
                                            "num_hidden_layers": 32, "vocab_size": 32000},
    "clip (clip-vit-large-patch14-336)": {
        "model_type": "clip",
        "text_config": {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072,
                        "num_hidden_layers": 12, "vocab_size": 49408,
                        "max_position_embeddings": 77},
        "vision_config": {"hidden_size": 1024, "num_attention_heads": 16,
                          "intermediate_size": 4096, "num_hidden_layers": 24, "image_size": 336,
                          "patch_size": 14}},
    "gme (gme-Qwen2-VL-2B-Instruct)": {
        "model_type": "qwen2_vl", "hidden_size": 1536, "num_attention_heads": 12,
        "num_key_value_heads": 2, "intermediate_size": 8960, "num_hidden_layers": 28,
        "vocab_size": 151936,
        "vision_config": {"embed_dim": 1280, "depth": 32, "num_heads": 16, "mlp_ratio": 4,
                          "patch_size": 14}},
}


def gpu_peaks(device_name: str) -> tuple[float, float]:
    """(FLOP/s, bytes/s) for a device name; ValueError for an unknown card (pass --peak-*)."""
    for key, flops, bandwidth in GPU_PEAKS:
        if key.lower() in device_name.lower():
            return flops, bandwidth
    raise ValueError(f"no peak figures for {device_name!r}: pass --peak-tflops and "
                     "--bandwidth-tbs")


def sweep(max_batch: int, seq_buckets: Sequence[int], max_seq_len: int,
          batches: Sequence[int]) -> list[tuple[int, int]]:
    """(batch, sequence length) shapes: every batch size that fits, at the top of each
    profile's sequence range (the profile's worst case); no profiles: the max length."""
    lengths = sorted(set(seq_buckets) | {max_seq_len}) if seq_buckets else [max_seq_len]
    return [(b, s) for s in lengths for b in batches if b <= max_batch]


def synthetic_feeds(batch: int, seq: int, vocab: int) -> dict[str, np.ndarray]:
    """Full-length rows of ordinary token ids (no padding: the shape is what is timed)."""
    ids = np.random.default_rng(batch * 100_003 + seq).integers(1000, max(1001, vocab - 1),
                                                                 (batch, seq), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def timed(call: Callable[[], object], seconds: float, sync: Callable[[], None]) -> list[float]:
    """Latencies of repeated calls for about `seconds` (after 3 warm-ups), synced each time."""
    for _ in range(3):
        call()
    sync()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(latencies) < 5:
        start = time.perf_counter()
        call()
        sync()
        latencies.append(time.perf_counter() - start)
    return latencies


def row(name: str, batch: int, seq: int, latencies: list[float], bound: float) -> str:
    tokens_per_s = batch * seq / float(np.mean(latencies))
    return (f"| {name} | {batch} | {seq} | {tokens_per_s:,.0f} | {percentile_ms(latencies, 50):.2f}"
            f" | {percentile_ms(latencies, 99):.2f} | {tokens_per_s / bound:.0%} |")


def run_gpu(args: argparse.Namespace) -> list[str]:
    import torch

    from builder.families import graphs
    from models.registry import family_by_name
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder

    embedder = Embedder.load(args.artifact, RuntimeConfig(backend="tensorrt"))
    backend, spec = embedder.backend, embedder.spec
    checkpoint = Path(args.checkpoint or embedder.artifact.manifest.source["path"])
    config = json.loads((checkpoint / "config.json").read_text())
    tower = roofline.towers(config)[0]
    peak, bandwidth = peaks(args, torch.cuda.get_device_name())
    module = graphs(family_by_name(spec.family), checkpoint, spec)["text"][0].half().cuda().eval()
    lines = [f"GPU: {torch.cuda.get_device_name()}; artifact {args.artifact} "
             f"({embedder.artifact.manifest.precision}); "
             f"profiles {backend.limits.seq_buckets}", "",
             "| system | batch | seq | tokens/s | p50 ms | p99 ms | of roofline |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    limits = backend.limits
    for batch, seq in sweep(limits.max_batch_size, limits.seq_buckets, limits.max_seq_len,
                            args.batches):
        feeds = synthetic_feeds(batch, seq, int(config.get("vocab_size", 30000)))
        bound = roofline.roofline(tower, batch, seq, peak, bandwidth).tokens_per_s
        trt = timed(lambda: backend.embed(feeds), args.seconds, lambda: None)
        ids, mask = (torch.from_numpy(feeds[k]).cuda() for k in ("input_ids", "attention_mask"))
        with torch.inference_mode():
            eager = timed(lambda: module(ids, mask), args.seconds, torch.cuda.synchronize)
        lines += [row("TensorRT", batch, seq, trt, bound),
                  row("PyTorch fp16 eager", batch, seq, eager, bound)]
    backend.close()
    return lines


def peaks(args: argparse.Namespace, device_name: str) -> tuple[float, float]:
    if args.peak_tflops and args.bandwidth_tbs:
        return args.peak_tflops * 1e12, args.bandwidth_tbs * 1e12
    return gpu_peaks(device_name)


def text_shapes(config: dict, shapes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The shapes with sequence lengths capped at the text tower's positions (CLIP: 77)."""
    text = config.get("text_config", config)
    longest = int(text.get("max_position_embeddings") or 1 << 20)
    return sorted({(b, min(s, longest)) for b, s in shapes})


def roofline_table(peak: float, bandwidth: float, shapes: Sequence[tuple[int, int]]) -> list[str]:
    """Per family and tower: params, FLOPs/token, and the fp16 roofline bound per shape
    (vision towers: batch images at the tower's own patch count)."""
    lines = ["| family | tower | params | GFLOP/token @ seq | batch x seq | bound | "
             "tokens/s bound |", "|---|---|---:|---:|---:|---|---:|"]
    for family, config in FAMILY_CONFIGS.items():
        for tower in roofline.towers(config):
            tower_shapes = text_shapes(config, shapes) if tower.name == "text" else sorted(
                {(b, roofline.vision_tokens(config)) for b, _ in shapes})
            for batch, seq in tower_shapes:
                r = roofline.roofline(tower, batch, seq, peak, bandwidth)
                lines.append(f"| {family} | {tower.name} | {tower.params / 1e9:.2f} B | "
                             f"{tower.flops_per_token(seq) / 1e9:.2f} @ {seq} | {batch} x {seq}"
                             f" | {r.bound} | {r.tokens_per_s:,.0f} |")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact", type=Path, help="artifact dir with a TensorRT plan")
    p.add_argument("--checkpoint", type=Path, help="default: the manifest's source path")
    p.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1, 8, 32, 128])
    p.add_argument("--seconds", type=float, default=2.0, help="timing per shape and system")
    p.add_argument("--peak-tflops", type=float, help="override the card's fp16 dense peak")
    p.add_argument("--bandwidth-tbs", type=float, help="override the card's memory bandwidth")
    p.add_argument("--device-name", default="H100", help="for --roofline-only")
    p.add_argument("--roofline-only", action="store_true", help="no GPU needed")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    peak, bandwidth = peaks(args, args.device_name)
    lines = [f"Roofline ({args.device_name}: {peak / 1e12:.0f} TFLOP/s fp16 dense, "
             f"{bandwidth / 1e12:.2f} TB/s):", "",
             *roofline_table(peak, bandwidth, [(1, 32), (32, 128), (128, 512)]), ""]
    if not args.roofline_only:
        if args.artifact is None:
            raise SystemExit("--artifact is required unless --roofline-only")
        lines += run_gpu(args)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
