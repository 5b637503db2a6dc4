"""Every TensorRT / cuda-python name the code uses exists in the real bindings, and no API
removed in TensorRT 11 is used.

TensorRT's libraries cannot be installed here, but the tensorrt-cu13-bindings wheel holds the
real pybind11 module (same version as the Docker image). Its only undefined symbols are nine
C entry points of libnvinfer/libnvonnxparser/libnvinfer_plugin, none called at import; so
a subprocess loads empty stand-ins for those three libraries, imports the real module and
dumps every class's attributes. No TensorRT call ever runs.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

SOURCES = [ROOT / "builder" / "compile.py", ROOT / "runtime" / "backends" / "trt.py",
           ROOT / "runtime" / "backends" / "cuda_buffers.py"]
STUB_C = "\n".join(f"void* {name}(void) {{ return 0; }}" for name in (
    "createInferBuilder_INTERNAL", "createInferRefitter_INTERNAL", "createInferRuntime_INTERNAL",
    "getBuilderPluginRegistry", "getPluginRegistry", "initLibNvInferPlugins",
    "createNvOnnxParserRefitter_INTERNAL", "createNvOnnxParser_INTERNAL",
    "getNvOnnxParserVersion"))
LIBS = ("nvinfer", "nvinfer_plugin", "nvonnxparser")
DUMP = """
import ctypes, json, sys
for lib in sys.argv[2:]:
    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
import tensorrt_bindings as trt
out = {"__module__": sorted(dir(trt)), "__version__": trt.__version__}
for name in dir(trt):
    obj = getattr(trt, name)
    if isinstance(obj, type):
        out[name] = sorted(dir(obj))
json.dump(out, open(sys.argv[1], "w"))
"""
# Local variable (or attribute) name in our TensorRT code -> the TensorRT class it holds.
TYPED = {"builder": "Builder", "network": "INetworkDefinition", "parser": "OnnxParser",
         "config": "IBuilderConfig", "shapes": "IOptimizationProfile", "engine": "ICudaEngine",
         "context": "IExecutionContext", "runtime": "Runtime", "cache": "ITimingCache",
         "timing": "ITimingCache", "e": "ParserError"}
# Removed in TensorRT 11 (10.x -> 11.x Python migration reference) or already in 10.x
# (8.x -> 10.x reference): each must be absent from the bindings and from our code.
REMOVED = {
    "BuilderFlag": ["FP16", "BF16", "INT8", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                    "PREFER_PRECISION_CONSTRAINTS"],
    "IBuilderConfig": ["int8_calibrator", "set_quantization_flag", "quantization_flags",
                       "max_workspace_size"],
    "ICudaEngine": ["device_memory_size", "get_binding_shape", "get_binding_index",
                    "num_bindings", "binding_is_input", "max_batch_size"],
    "IExecutionContext": ["execute_async_v2", "execute_async", "execute",
                          "set_binding_shape", "set_optimization_profile"],
    "Builder": ["build_engine", "platform_has_fast_fp16", "platform_has_fast_int8"],
    "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH"],
}


@pytest.fixture(scope="module")
def bindings(tmp_path_factory: pytest.TempPathFactory) -> dict:
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is needed to stand in for the TensorRT libraries"
    work = tmp_path_factory.mktemp("trt-stubs")
    (work / "stub.c").write_text(STUB_C + "\n")
    libs = []
    for lib in LIBS:
        path = work / f"lib{lib}.so.11"
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(path),
                        f"-Wl,-soname,lib{lib}.so.11", str(work / "stub.c")], check=True)
        libs.append(str(path))
    out = work / "api.json"
    subprocess.run([sys.executable, "-c", DUMP, str(out), *libs], check=True, timeout=120)
    return json.loads(out.read_text())


def _chain(node: ast.AST) -> list[str]:
    """a.b.c -> ["a", "b", "c"]; self.x.y -> ["x", "y"]; other roots (calls) -> []."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    else:
        return []
    parts.reverse()
    return parts[1:] if parts[0] == "self" else parts


def uses(root: str | None = None) -> set[tuple[str, ...]]:
    """Attribute chains in our TensorRT code, outermost first, no prefixes of longer ones."""
    found: set[tuple[str, ...]] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                chain = tuple(_chain(node))
                if len(chain) >= 2 and (root is None or chain[0] == root):
                    found.add(chain)
    return {c for c in found if not any(o != c and o[:len(c)] == c for o in found)}


def test_bindings_are_the_docker_version(bindings: dict) -> None:
    assert bindings["__version__"] == "11.4.0.106"


def test_every_trt_name_exists(bindings: dict) -> None:
    checked = []
    for chain in uses("trt"):
        name, *rest = chain[1:]
        assert name in bindings["__module__"], f"trt.{name} is not in TensorRT 11.4"
        if rest and rest[0] != "__version__":
            assert rest[0] in bindings[name], f"trt.{name}.{rest[0]} is not in TensorRT 11.4"
        checked.append(chain)
    assert ("trt", "NetworkDefinitionCreationFlag", "STRONGLY_TYPED") in checked
    assert ("trt", "MemoryPoolType", "WORKSPACE") in checked


def test_every_method_on_trt_objects_exists(bindings: dict) -> None:
    checked = set()
    for chain in uses():
        for owner, attr in zip(chain, chain[1:]):
            if owner in TYPED:
                assert attr in bindings[TYPED[owner]], f"{TYPED[owner]}.{attr} is not in TensorRT 11.4"
                checked.add(f"{TYPED[owner]}.{attr}")
    assert {"IExecutionContext.execute_async_v3", "IExecutionContext.set_input_shape",
            "IExecutionContext.set_tensor_address", "Builder.build_serialized_network",
            "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.set_timing_cache",
            "ITimingCache.serialize", "OnnxParser.num_errors", "Runtime.deserialize_cuda_engine",
            "IExecutionContext.set_optimization_profile_async"} <= checked


def test_removed_apis_are_gone_and_unused(bindings: dict) -> None:
    pairs = {pair for chain in uses() for pair in zip(chain, chain[1:])}
    used = {(TYPED.get(owner, owner), attr) for owner, attr in pairs}
    for cls, names in REMOVED.items():
        for name in names:
            assert name not in bindings[cls], f"{cls}.{name} still exists: fix the denylist"
            assert (cls, name) not in used, f"{cls}.{name} was removed in TensorRT 11"
    # The check sees through our variable names: a removed call on a context is caught.
    assert ("IExecutionContext", "execute_async_v3") in used


def test_every_cudart_name_exists() -> None:
    cudart = pytest.importorskip("cuda.bindings.runtime")
    checked = 0
    for chain in uses("cudart"):
        target = cudart
        for attr in chain[1:]:
            assert hasattr(target, attr), f"cuda.bindings.runtime.{'.'.join(chain[1:])} is missing"
            target = getattr(target, attr)
        checked += 1
    assert checked >= 8
