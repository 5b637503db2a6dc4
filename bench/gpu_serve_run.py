"""The measuring half of bench.gpu_serve (needs a GPU): the checkpoint and artifact, the
raw engine, sentence-transformers fp16, the server under load, GPU busy and server CPU."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

from bench.gpu_serve_report import RAW_BATCHES, SERVER_SHAPES, Row, server_name
from bench.http_load import closed_loop
from bench.stats import percentile_ms

BGE_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "intermediate_size": 3072, "vocab_size": 30522, "max_position_embeddings": 512}


def gpu_missing() -> str:
    """"" when this machine has onnxruntime's CUDA provider and a GPU, else what it lacks."""
    from runtime.pipeline.choose import probe_ort_cuda

    return probe_ort_cuda().lacking


def make_bge_base(out: Path) -> Path:
    """A bge-base-shaped BERT with random weights, CLS pooling, the all-MiniLM tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    from devtools.helpers import minilm_checkpoint

    if (out / "config.json").is_file():
        return out
    torch.manual_seed(0)
    BertModel(BertConfig(**BGE_BASE)).save_pretrained(out)
    source = minilm_checkpoint()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt", "modules.json", "sentence_bert_config.json"):
        shutil.copy(source / name, out / name)
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 768, "pooling_mode_cls_token": True,
         "pooling_mode_mean_tokens": False}))
    return out


def artifact_for(args: argparse.Namespace) -> tuple[Path, Path]:
    """(checkpoint, fp16 artifact): the ones given, else made under --work-dir."""
    checkpoint = args.model_path or make_bge_base(args.work_dir / "bge-base-random")
    if args.artifact:
        return checkpoint, args.artifact
    out = args.work_dir / f"{checkpoint.name}-fp16"
    if not (out / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "builder", "--model-path", str(checkpoint),
                        "--output", str(out), "--precision", "fp16"], check=True)
    return checkpoint, out


def repeated(call: Callable[[], Any], seconds: float) -> tuple[float, int]:
    """(seconds, passes): one warm pass untimed, then passes until `seconds` have gone."""
    call()
    start, passes = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        call()
        passes += 1
    return time.perf_counter() - start, passes


def raw_engine(artifact: Path, ids: list[list[int]], batch: int, seconds: float,
               device_id: int) -> Row:
    from runtime.backends.base import BackendLimits, pad_batch
    from runtime.backends.ort_cuda import OnnxRuntimeIoBackend

    backend = OnnxRuntimeIoBackend(artifact / "model.onnx", BackendLimits(batch, 512),
                                   sessions=1, device="cuda", device_id=device_id)
    rows = sorted(ids, key=len)
    feeds = [dict(zip(("input_ids", "attention_mask"), pad_batch(rows[i:i + batch])))
             for i in range(0, len(rows), batch)]
    took, passes = repeated(lambda: [backend.embed(f) for f in feeds], seconds)
    backend.close()
    return Row(f"raw engine, batch {batch}", passes * sum(map(len, ids)) / took)


def st_fp16(checkpoint: Path, sentences: list[str], tokens: int, batch: int,
            seconds: float) -> Row:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(checkpoint), device="cuda").to(torch.float16)
    took, passes = repeated(lambda: model.encode(sentences, batch_size=batch), seconds)
    return Row(f"sentence-transformers fp16, batch {batch}", passes * tokens / took)


class GpuBusy:
    """nvidia-smi sampling utilization.gpu every 100 ms while the block runs."""

    def __init__(self, device_id: int):
        self.device_id, self.samples = device_id, list[float]()

    def __enter__(self) -> "GpuBusy":
        exe = shutil.which("nvidia-smi")
        self.proc = None if exe is None else subprocess.Popen(
            [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
             f"--id={self.device_id}", "-lms", "100"], stdout=subprocess.PIPE, text=True)
        if self.proc is not None:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line))

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_row(url: str, pid: int, sentences: list[str], tokens: int, size: int,
               clients: int, encoding: str, args: argparse.Namespace) -> Row:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    calls = [sentences[i:i + size] for i in range(0, len(sentences), size)]
    body = {"model": "bench", "encoding_format": encoding}
    bodies = [orjson.dumps({**body, "input": c[0] if size == 1 else c}) for c in calls]
    first, _, _ = asyncio.run(closed_loop(host, int(port), bodies, clients))  # warm, sized
    passes = max(1, math.ceil(args.seconds / first))
    cpu = cpu_seconds(pid)
    with GpuBusy(args.device_id) as busy:
        took, latencies, _ = asyncio.run(closed_loop(host, int(port), bodies * passes, clients))
    return Row(server_name(size, clients, encoding), passes * tokens / took,
               len(bodies) * passes / took, percentile_ms(latencies, 50),
               percentile_ms(latencies, 99), busy.mean, 100 * (cpu_seconds(pid) - cpu) / took)


def server_rows(artifact: Path, sentences: list[str], tokens: int,
                args: argparse.Namespace) -> list[Row]:
    from devtools.helpers import running_server, server_pid

    flags = ["--backend", "onnxruntime-cuda", *shlex.split(args.server_args)]
    with running_server(artifact, *flags) as url:
        pid = server_pid(url)
        return [server_row(url, pid, sentences, tokens, size, clients, encoding, args)
                for encoding in ("float", "base64") for size, clients in SERVER_SHAPES]


def machine_facts(device_id: int) -> dict[str, str]:
    from bench.machine import cpu_model, versions
    from runtime.backends.gpu import machine

    smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader",
                          f"--id={device_id}"], capture_output=True, text=True)
    facts = {"GPU": machine(device_id).gpu_name, "driver": smi.stdout.strip() or "unknown",
             "CPU": f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores"}
    return {**facts, **versions(), "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    from tokenizers import Tokenizer

    from bench.corpus import load_sentences

    checkpoint, artifact = artifact_for(args)
    sentences = load_sentences()
    ids = [e.ids for e in Tokenizer.from_file(str(artifact / "tokenizer.json"))
           .encode_batch(sentences)]
    tokens = sum(map(len, ids))
    rows = [raw_engine(artifact, ids, b, args.seconds, args.device_id) for b in RAW_BATCHES]
    rows += [st_fp16(checkpoint, sentences, tokens, b, args.seconds) for b in RAW_BATCHES]
    rows += server_rows(artifact, sentences, tokens, args)
    facts = {"model": f"{checkpoint.name} (fp16 artifact {artifact})",
             "corpus": f"{len(sentences)} sentences, {tokens} tokens (bench/corpus.py)",
             **machine_facts(args.device_id)}
    return rows, facts
