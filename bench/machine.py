"""The machine and software a benchmark ran on, and this CPU's measured matmul rate."""

from __future__ import annotations

import importlib.metadata
import os
import resource
import platform
import time

import numpy as np

PACKAGES = ("onnxruntime", "torch", "sentence-transformers", "transformers", "tokenizers",
            "numpy", "fastapi", "uvicorn", "uvloop", "httptools", "orjson")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD features that decide matmul speed (VNNI makes int8 fast and exact)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next(line for line in fh if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return [f for f in wanted if f in flags]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def describe(packages: tuple[str, ...]) -> str:
    """"<CPU>, <n> cores; <package> <version>, ...": a benchmark section's machine line."""
    return f"{cpu_model()}, {os.cpu_count()} cores; " + ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in packages)


def busy_seconds() -> float:
    """CPU-seconds used on this machine since boot, by every process (/proc/stat), with the
    time a hypervisor stole from it (it was not ours either)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU-seconds used by this process and its finished children (the servers it ran)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def matmul_rate(rows: int, inner: int, cols: int, threads: int, seconds: float = 2.0) -> float:
    """fp32 FLOP/s of ONNX Runtime's own MatMul (the kernels the model runs on) for a
    (rows x inner) @ (inner x cols) product, e.g. tokens x hidden @ hidden x intermediate."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((inner, cols)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, inner])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, cols])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((rows, inner)).astype(np.float32)
    session.run(None, {"x": x})
    best = float("inf")  # the fastest of many short runs: other processes only slow us down
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        session.run(None, {"x": x})
        best = min(best, time.perf_counter() - start)
    return 2.0 * rows * inner * cols / best

