"""PyTorch fp16 on a GPU for every model family at its hub size, against the roofline.

    python -m bench.gpu_eager [--families bert,qwen3] [--seconds 1] [--output FILE]

The baseline half of the GPU benchmark, runnable without TensorRT, checkpoints or a network:
each family's model is built from its config (bench/gpu.py FAMILY_CONFIGS) with random
weights straight on the GPU (speed does not depend on the weights' values) and timed on
full-length rows, next to the roofline bound of bench/roofline.py and the card's
measured fp16 matmul rate and copy bandwidth. `--tiny` shrinks every model to two small
layers and runs on the CPU: that is how the unit tests run this file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bench import roofline
from bench.gpu import FAMILY_CONFIGS, gpu_peaks, roofline_table, row, text_shapes, timed

SHAPES = ((1, 32), (32, 128), (128, 512))
TINY = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 1000,
        "image_size": 32, "patch_size": 8}


def shrink(config: dict[str, Any]) -> dict[str, Any]:
    """The same structure with TINY sizes (keys the config does not have stay absent)."""
    small = {k: (TINY[k] if k in TINY else v) for k, v in config.items()}
    for key in ("text_config", "vision_config"):
        if key in config:
            small[key] = shrink(config[key])
    return small


def text_config(config: dict[str, Any]) -> Any:
    """transformers config of the text tower. GME's language model is timed as the Qwen2
    body of the same sizes: its multimodal rope changes positions, not the arithmetic."""
    from transformers import AutoConfig

    kind = {"qwen2_vl": "qwen2", "clip": "clip_text_model"}.get(config["model_type"],
                                                               config["model_type"])
    fields = config.get("text_config", config)
    fields = {k: v for k, v in fields.items() if k not in ("model_type", "vision_config")}
    return AutoConfig.for_model(kind, **fields)


def build_towers(config: dict[str, Any], dtype: Any) -> list[tuple[str, Any]]:
    """(tower name, module) for the towers timed here: every text tower and CLIP's vision
    tower (GME's vision tower takes a patch grid, not a batch of images: not timed)."""
    from transformers import AutoConfig, AutoModel

    towers = [("text", AutoModel.from_config(text_config(config), dtype=dtype))]
    if config["model_type"] == "clip":
        vision = {k: v for k, v in config["vision_config"].items() if k != "model_type"}
        towers.append(("vision", AutoModel.from_config(
            AutoConfig.for_model("clip_vision_model", **vision), dtype=dtype)))
    return [(name, module.eval()) for name, module in towers]


def feeds(tower: str, config: dict[str, Any], batch: int, seq: int, device: Any,
          dtype: Any) -> dict[str, Any]:
    import torch

    if tower == "vision":
        size = int(config["vision_config"]["image_size"])
        return {"pixel_values": torch.randn(batch, 3, size, size, device=device, dtype=dtype)}
    vocab = int(config.get("text_config", config)["vocab_size"])
    ids = torch.randint(100, vocab - 1, (batch, seq), device=device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def measured_ceilings(device: Any) -> tuple[float, float]:
    """(fp16 matmul FLOP/s on an 8192^3 product, device-to-device bytes/s read + written)."""
    import torch

    a = torch.randn(8192, 8192, device=device, dtype=torch.float16)
    matmul = timed(lambda: a @ a, 1.0, torch.cuda.synchronize)
    big = torch.empty(1 << 30, device=device, dtype=torch.uint8)
    out = torch.empty_like(big)
    copy = timed(lambda: out.copy_(big), 1.0, torch.cuda.synchronize)
    return 2 * 8192**3 / min(matmul), 2 * big.numel() / min(copy)


def time_family(family: str, config: dict[str, Any], args: argparse.Namespace,
                peak: float, bandwidth: float) -> list[str]:
    import torch

    device, dtype = ("cpu", torch.float32) if args.tiny else ("cuda", torch.float16)
    sync: Callable[[], None] = (lambda: None) if args.tiny else torch.cuda.synchronize
    with torch.device(device):
        built = build_towers(config, dtype)
    bounds = {t.name: t for t in roofline.towers(config)}
    lines = []
    for name, module in built:
        shapes = text_shapes(config, SHAPES) if name == "text" else sorted(
            {(b, roofline.vision_tokens(config)) for b, _ in SHAPES})
        for batch, seq in shapes:
            inputs = feeds(name, config, batch, seq, device, dtype)
            with torch.inference_mode():
                latencies = timed(lambda: module(**inputs), args.seconds, sync)
            bound = roofline.roofline(bounds[name], batch, seq, peak, bandwidth).tokens_per_s
            lines.append(row(f"{family} {name}", batch, seq, latencies, bound))
    del built
    if not args.tiny:
        torch.cuda.empty_cache()
    return lines


def run(args: argparse.Namespace) -> tuple[str, list[str], tuple[float, float]]:
    import torch
    import transformers

    configs = {k: v for k, v in FAMILY_CONFIGS.items() if not args.families
               or k.split(" ")[0] in args.families}
    if args.tiny:
        configs = {k: shrink(v) for k, v in configs.items()}
        name, (peak, bandwidth) = "cpu (tiny models)", gpu_peaks(args.device_name)
        header = f"{name}; torch {torch.__version__}, transformers {transformers.__version__}"
    else:
        name = torch.cuda.get_device_name()
        peak, bandwidth = gpu_peaks(name)
        flops, copy = measured_ceilings("cuda")
        header = (f"{name}; torch {torch.__version__} (CUDA {torch.version.cuda}), "
                  f"transformers {transformers.__version__}; data sheet {peak / 1e12:.0f} "
                  f"TFLOP/s fp16 dense, {bandwidth / 1e12:.2f} TB/s; measured {flops / 1e12:.0f}"
                  f" TFLOP/s fp16 matmul (8192^3), {copy / 1e12:.2f} TB/s copy")
    lines = ["| PyTorch fp16 (sdpa), random weights | batch | seq | tokens/s | "
             "p50 ms | p99 ms | of roofline |", "|---|---:|---:|---:|---:|---:|---:|"]
    for family, config in configs.items():
        try:
            lines += time_family(family, config, args, peak, bandwidth)
        except Exception as exc:  # one family's failure must not cost the others' numbers
            lines.append(f"| {family} | failed: {type(exc).__name__}: {exc} | | | | | |")
        print(lines[-1], file=sys.stderr, flush=True)
    return header, lines, (peak, bandwidth)


def document(header: str, rows: list[str], peak: float, bandwidth: float) -> str:
    """BENCHMARKS_GPU.md: what ran, the measured rows, and the roofline they are held to."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join([
        "# GPU benchmarks", "",
        f"Written by `python -m bench.gpu_eager --output BENCHMARKS_GPU.md` on {when}.",
        "", f"- Machine: {header}.",
        "- What ran: each family's model at its hub size, built from its config with random "
        "weights on the GPU (speed does not depend on the values), in fp16 with transformers' "
        "default (sdpa) attention, on full-length rows (no padding).",
        "- \"of roofline\": measured tokens/s over the bound of `bench/roofline.py` "
        "(weights read once, activations once, the data sheet's peak FLOP/s and bandwidth).",
        "- The TensorRT rows (`python -m bench.gpu --artifact DIR`) are not here yet: "
        "TensorRT's libraries are not installable on the machines this ran on.", "",
        "## PyTorch fp16, per family", "", *rows, "",
        "## Roofline, per family", "",
        *roofline_table(peak, bandwidth, list(SHAPES)), ""])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_eager", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", type=lambda s: s.split(","), default=[],
                   help="first words of FAMILY_CONFIGS keys, e.g. bert,qwen3 (default: all)")
    p.add_argument("--seconds", type=float, default=1.0, help="timing per shape")
    p.add_argument("--tiny", action="store_true", help="two-layer models on the CPU (tests)")
    p.add_argument("--device-name", default="H100", help="peak figures for --tiny")
    p.add_argument("--output", type=Path, help="also write the results there (markdown)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    header, rows, (peak, bandwidth) = run(args)
    print("\n".join([header, "", *rows]))
    if args.output:
        args.output.write_text(document(header, rows, peak, bandwidth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
