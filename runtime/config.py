"""Runtime configuration: one frozen dataclass, built once at the entry point."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from runtime.pipeline.limits import BatchFlags
from runtime.adapters.media import MediaConfig

# tensorrt: TensorRT 11 plans; tensorrt-rtx: TensorRT for RTX plans; onnxruntime: ONNX
# Runtime on CPU; onnxruntime-cuda: ONNX Runtime on a GPU (runtime/pipeline/choose.py)
from runtime.settings import DEFAULT_TRT_CONTEXTS, RUNTIME_BACKENDS as BACKENDS


@dataclass(frozen=True)
class RuntimeConfig:
    backend: str = "auto"
    # The batching flags as given (None: not given); each tower's batcher limits are
    # runtime.pipeline.limits.resolve_batch(batch, backend limits, plan bound, tower, spec).
    batch: BatchFlags = field(default_factory=BatchFlags)
    threads: int = 0  # ONNX Runtime intra-op threads; 0: every core this process may use
    # Cores ONNX Runtime's adaptive threading (threads=0) plans for; 0: every core this
    # process may use. Several models in one appliance share them (server/launch_server.py).
    cores: int = 0
    tokenizer_threads: int = 0  # 0: tokenizers() picks
    allow_auto_truncate: bool = False
    trt_contexts: int = DEFAULT_TRT_CONTEXTS  # TensorRT execution contexts (one CUDA stream each) = batches in flight
    media: MediaConfig = field(default_factory=MediaConfig)  # image fetch and decode limits
    max_request_tokens: int = 300_000  # summed over a request's inputs (OpenAI's limit): 400
    # Over-long texts of requests that do not say: chunked and pooled (runtime/pipeline/
    # chunking.py), else 400 or truncated; chunk_overlap None: the default fraction.
    chunk_long_inputs: bool = False
    chunk_overlap: int | None = None

    def tokenizers(self) -> int:
        """Tokenizer threads: as set, else one per two cores (2 to 8): a GPU host's cores
        tokenise in parallel (the GIL is released), a small CPU host keeps its for the model."""
        return self.tokenizer_threads or max(2, min(8, len(os.sched_getaffinity(0)) // 2))

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
