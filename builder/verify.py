"""The build-time parity gate: the artifact, run the way the server runs it, against the
reference implementation on a fixed probe set. Below the threshold the build is refused."""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builder import families
from models.family import Family
from models.spec import ModelSpec

# SGLang holds fp32 embeddings to |cosine - 1| < 1e-5 of the Hugging Face reference; every
# family's fp32 artifact measured >= 1 - 6e-8 on these probes (bundled all-MiniLM and the
# tiny Qwen3, gte-Qwen2, E5-Mistral, CLIP and GME checkpoints).
MIN_COSINE = 0.99999
IMAGE_MIN_COSINE = 0.999  # image towers: resampling and patch maths in another library

PROBES: tuple[str, ...] = (
    "What is the capital of France?",
    "The quick brown fox jumps over the lazy dog.",
    "a",
    "Ünïcödé façade — naïve café, Straße, Ελληνικά, русский, 中文字符, 日本語のテキスト",
    "Emoji 🙂🚀🔥 mixed with text 👩‍💻",
    "   lots    of\twhitespace \n\n between   words   ",
    "Short.",
    "Embeddings map text to vectors so that similar meanings land close together. " * 3,
    "1234567890 !@#$%^&*() <html><body>markup</body></html>",
    "The appliance batches concurrent requests by a token budget and answers each in order.",
)


def length_tolerance(min_cosine: float) -> float:
    """|our length / the reference's - 1| allowed beside a cosine threshold: a vector may be
    as far off in length as that cosine lets it be in direction (sqrt(2 (1 - cos)), the
    chord between unit vectors): 4.5e-3 at fp32's 0.99999, 4.5e-2 at 0.999."""
    return float(np.sqrt(2.0 * (1.0 - min_cosine)))


@dataclass(frozen=True)
class Verification:
    min_cosine: float
    mean_cosine: float
    probes: int
    threshold: float = MIN_COSINE
    method: str = "onnxruntime"  # what ran the artifact's graph (or its export module)
    image_min_cosine: float | None = None  # over image and text+image probes; None: none
    # Cosine ignores length: a graph that normalises where the reference does not (or the
    # reverse) has cosine 1. Largest |our length / the reference's - 1| over every probe.
    max_length_error: float = 0.0
    long_probe: str = ""  # what the long probe tested (its length bounded by PROBE_MEMORY)

    @property
    def length_tolerance(self) -> float:
        images = self.image_min_cosine is not None
        return length_tolerance(min(self.threshold, IMAGE_MIN_COSINE) if images
                                else self.threshold)

    @property
    def passed(self) -> bool:
        return not self.failures()

    def failures(self) -> list[str]:
        """What missed its threshold, in words; [] when the gate passes."""
        found = []
        if self.min_cosine < self.threshold:
            found.append(f"min cosine {self.min_cosine:.7f} (text, needs {self.threshold})")
        if self.image_min_cosine is not None and self.image_min_cosine < IMAGE_MIN_COSINE:
            found.append(f"min cosine {self.image_min_cosine:.7f} (images, needs "
                         f"{IMAGE_MIN_COSINE})")
        if self.max_length_error > self.length_tolerance:
            found.append(f"vector lengths {self.max_length_error:.2e} from the reference's "
                         f"(needs <= {self.length_tolerance:.1e}; does the graph normalise "
                         "where the model does not, or the reverse?)")
        return found

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {"min_cosine": self.min_cosine, "mean_cosine": self.mean_cosine,
                "probes": self.probes, "threshold": self.threshold, "method": self.method,
                "image_min_cosine": self.image_min_cosine, "image_threshold": IMAGE_MIN_COSINE,
                "max_length_error": self.max_length_error,
                "length_tolerance": self.length_tolerance, "long_probe": self.long_probe}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def compare(ours: np.ndarray, reference: np.ndarray, threshold: float, method: str = "onnxruntime",
            image: np.ndarray | None = None) -> Verification:
    """Direction (cosine) and length of each of our vectors against the reference's;
    `image` marks the probes that hold an image (their own cosine threshold)."""
    cos = cosines(ours, reference)
    lengths = np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    text = ~image if image is not None else np.ones(len(cos), dtype=bool)
    return Verification(float(cos[text].min()), float(cos[text].mean()), len(cos), threshold,
                        method, float(cos[~text].min()) if (~text).any() else None,
                        float(np.abs(lengths - 1.0).max()))


# The long probe runs alone (never padded beside the others) and its attention, materialised
# by the reference (eager: fp32 scores, softmax and mask) and by ONNX Runtime, must stay
# within this: heads x length^2 x 12 bytes. A 32k-context model at its full length would need
# 16 x 32768^2 x 12 bytes = 192 GiB; the probe is then cut to what fits, and truncation at
# max_len is checked on the tokenizer alone.
PROBE_MEMORY = 4 << 30
SCORE_BYTES = 12  # fp32 scores + softmax output + expanded mask, per head and cell


@dataclass(frozen=True)
class LongProbe:
    words: int  # "long " repeated: about one token each
    truncates: bool  # past max_len: the graph runs at max_len, truncation checked end to end
    note: str  # what it tested, in the build log and the manifest


def long_probe(spec: ModelSpec, heads: int) -> LongProbe:
    """The longest probe whose attention fits PROBE_MEMORY (stated in its note)."""
    full = spec.max_len + 8
    fits = math.isqrt(PROBE_MEMORY // (max(1, heads) * SCORE_BYTES))
    need = heads * spec.max_len ** 2 * SCORE_BYTES
    if fits >= full:
        return LongProbe(full, True, f"long probe past max_len {spec.max_len} (truncated to "
                         f"it): attention {need / 2**30:.2f} GiB for {heads} heads")
    words = max(1, fits // 64 * 64 or fits)
    return LongProbe(words, False, f"long probe of ~{words} tokens, not max_len "
                     f"{spec.max_len}: {heads} heads x {spec.max_len}^2 attention would need "
                     f"{need / 2**30:.0f} GiB in the reference (bound {PROBE_MEMORY >> 30} "
                     f"GiB); truncation at {spec.max_len} checked on the tokenizer alone")


def probe_texts(spec: ModelSpec, heads: int = 1) -> list[str]:
    # The last probe is long: past the max length (truncation checked) where that fits.
    return list(PROBES) + ["long " * long_probe(spec, heads).words]


def check_truncation(artifact: Path, spec: ModelSpec) -> None:
    """Without running the model: the artifact's tokenizer cuts a text past max_len to it."""
    from runtime.artifact.manifest import Manifest
    from runtime.tokenizer import TextTokenizer

    tokenizer = TextTokenizer(artifact / Manifest.load(artifact).tokenizer, spec.max_len)
    (ids,) = tokenizer.encode(["long " * (spec.max_len + 8)], truncate=True)
    if len(ids) != spec.max_len:
        raise ValueError(f"the tokenizer cut a text past max_len to {len(ids)} tokens, "
                         f"not {spec.max_len}")


def run_artifact(artifact: Path, texts: list[str]) -> np.ndarray:
    """Embed with the runtime's own tokenizer and ONNX Runtime backend, mixed-length batch."""
    from runtime.backends.base import BackendLimits
    from runtime.artifact.manifest import Manifest
    from runtime.backends.ort import OnnxRuntimeBackend

    manifest = Manifest.load(artifact)
    backend = OnnxRuntimeBackend(artifact / manifest.graphs["text"].onnx,
                                 BackendLimits(len(texts), manifest.spec.max_len))
    return backend.embed(probe_feeds(artifact, texts))


def probe_feeds(artifact: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """The texts through the artifact's own tokenizer, as one right-padded batch."""
    from runtime.backends.base import pad_batch
    from runtime.artifact.manifest import Manifest
    from runtime.tokenizer import TextTokenizer

    manifest = Manifest.load(artifact)
    tokenizer = TextTokenizer(artifact / manifest.tokenizer, manifest.spec.max_len)
    ids, mask = pad_batch(tokenizer.encode(texts, truncate=True))
    return {"input_ids": ids, "attention_mask": mask}


def run_export_module(family: Family, checkpoint: str | Path, spec: ModelSpec, artifact: Path,
                      texts: list[str], precision: str) -> np.ndarray:
    """The module that was exported, run by torch in its precision (for graphs ONNX Runtime's
    CPU kernels cannot run, e.g. bfloat16)."""
    import torch

    from builder import precision as precisions

    prec = precisions.get(precision)
    module = precisions.prepare(families.graphs(family, checkpoint, spec)["text"][0], prec)
    feeds = probe_feeds(artifact, texts)
    with torch.inference_mode(), precisions.float32_softmax(prec):
        out = module(*(torch.from_numpy(feeds[name]) for name in spec.inputs))
    return out.float().numpy()


def text_heads(checkpoint: str | Path) -> int:
    from builder import memory

    config = memory.read_config(Path(checkpoint))
    return memory.widths(config, "text").heads if config else 1


def verify(family: Family, checkpoint: str | Path, spec: ModelSpec, artifact: Path,
           precision: str = "fp32", method: str = "onnxruntime") -> Verification:
    """Cosine and length of the artifact's vectors (run by `method`: onnxruntime or torch)
    against the float32 reference, gated at the precision's threshold by the caller. The
    long probe runs alone, so no short probe is padded to its length."""
    from builder import precision as precisions

    probe = long_probe(spec, text_heads(checkpoint))
    if not probe.truncates:
        check_truncation(artifact, spec)
    texts = probe_texts(spec, text_heads(checkpoint))
    ours, reference = [], []
    for group in (texts[:-1], texts[-1:]):
        if method == "onnxruntime":
            ours.append(run_artifact(artifact, group))
        else:
            ours.append(run_export_module(family, checkpoint, spec, artifact, group, precision))
        reference.append(families.reference(family, checkpoint, spec, [(t, None) for t in group]))
    result = compare(np.concatenate(ours), np.concatenate(reference),
                     precisions.get(precision).min_cosine, method)
    return dataclasses.replace(result, long_probe=probe.note)
