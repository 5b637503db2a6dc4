"""Every TensorRT / cuda-python name the code uses exists in the real bindings of BOTH
flavours, no API removed in TensorRT 11 is used, and the few names only one flavour has are
used only behind a flavour condition.

TensorRT 11: its libraries cannot be installed here, but the tensorrt-cu13-bindings wheel
holds the real pybind11 module (same version as the Docker image). Its only undefined
symbols are nine C entry points of libnvinfer/libnvonnxparser/libnvinfer_plugin, none called
at import; so a subprocess loads empty stand-ins for those three libraries, imports the real
module and dumps every class's attributes. TensorRT for RTX (tensorrt_rtx_bindings) imports
for real. No TensorRT call ever runs.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

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
import ctypes, importlib, json, sys
for lib in sys.argv[3:]:
    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
trt = importlib.import_module(sys.argv[2])
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
         "timing": "ITimingCache", "e": "ParserError", "runtime_config": "IRuntimeConfig",
         "runtime_cache": "IRuntimeCache"}
MODULES = {"tensorrt": ("tensorrt_bindings", "11.4.0.106"),
           "tensorrt-rtx": ("tensorrt_rtx_bindings", "1.7.1.116")}
# Names only one flavour has: each must be absent from the other's bindings, and used only
# behind a flavour condition (an `if` on the flavour, or a function named for it whose every
# call is behind one). "__module__": a top-level name (trt.X).
FLAVOUR_ONLY = {
    "tensorrt-rtx": {("IRuntimeConfig", "create_runtime_cache"),
                     ("IRuntimeConfig", "set_runtime_cache"), ("IRuntimeCache", "serialize"),
                     ("IRuntimeCache", "deserialize"), ("__module__", "ComputeCapability"),
                     ("IBuilderConfig", "set_compute_capability"),
                     ("IBuilderConfig", "num_compute_capabilities")},
    "tensorrt": set(),
}
FUNCTION_TAG = {"tensorrt-rtx": "rtx", "tensorrt": "trt11"}
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


def _stub_libraries(work: Path) -> list[str]:
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is needed to stand in for the TensorRT libraries"
    (work / "stub.c").write_text(STUB_C + "\n")
    libs = []
    for lib in LIBS:
        path = work / f"lib{lib}.so.11"
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(path),
                        f"-Wl,-soname,lib{lib}.so.11", str(work / "stub.c")], check=True)
        libs.append(str(path))
    return libs


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """flavour -> the binding module's names: {"__module__": [...], class: [...]}."""
    work = tmp_path_factory.mktemp("trt-stubs")
    out = {}
    for flavour, (module, _) in MODULES.items():
        libs = _stub_libraries(work) if flavour == "tensorrt" else []
        dump = work / f"{flavour}.json"
        subprocess.run([sys.executable, "-c", DUMP, str(dump), module, *libs], check=True,
                       timeout=120)
        out[flavour] = json.loads(dump.read_text())
    return out


@pytest.fixture(params=sorted(MODULES))
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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


def _linked(tree: ast.Module) -> ast.Module:
    """`tree` with a `parent` attribute on every node below the root (ast has none; it is
    set and read with setattr/getattr, as an attribute of our own)."""
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            setattr(child, "parent", node)
    return tree


def _trees() -> Iterator[ast.Module]:
    for path in SOURCES:
        yield _linked(ast.parse(path.read_text()))


def uses(root: str | None = None) -> set[tuple[str, ...]]:
    """Attribute chains in our TensorRT code, outermost first, no prefixes of longer ones."""
    found: set[tuple[str, ...]] = set()
    for tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                chain = tuple(_chain(node))
                if len(chain) >= 2 and (root is None or chain[0] == root):
                    found.add(chain)
    return {c for c in found if not any(o != c and o[:len(c)] == c for o in found)}


def typed_uses() -> Iterator[tuple[tuple[str, str], ast.AST, ast.Module]]:
    """((TensorRT class or "__module__", attribute), node, its tree) for every use."""
    for tree in _trees():
        for node in ast.walk(tree):
            chain = _chain(node) if isinstance(node, ast.Attribute) else []
            if len(chain) == 2 and chain[0] == "trt":
                yield ("__module__", chain[1]), node, tree
            elif len(chain) >= 2 and chain[-2] in TYPED:
                yield (TYPED[chain[-2]], chain[-1]), node, tree


def _behind_flavour_condition(node: ast.AST, tree: ast.Module, tag: str) -> bool:
    """Inside an `if` on the flavour, or in a function named for the flavour (tag) whose
    every call is itself behind such a condition."""
    child, parent = node, getattr(node, "parent", None)
    while parent is not None:
        if isinstance(parent, (ast.If, ast.IfExp)) and child is not parent.test:
            test = ast.unparse(parent.test)
            if "flavour" in test or "RTX" in test:
                return True
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if tag not in parent.name:
                return False
            calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                     and _chain(n.func)[-1:] == [parent.name]]
            return bool(calls) and all(_behind_flavour_condition(c, tree, tag) for c in calls)
        child, parent = parent, getattr(parent, "parent", None)
    return False


def test_bindings_are_the_pinned_versions(apis: dict, flavour: str) -> None:
    assert apis[flavour]["__version__"] == MODULES[flavour][1]


def test_every_trt_name_exists(apis: dict, flavour: str) -> None:
    api, other_only = apis[flavour], {n for f, names in FLAVOUR_ONLY.items() if f != flavour
                                      for n in names}
    checked = []
    for chain in uses("trt"):
        name, *rest = chain[1:]
        if ("__module__", name) in other_only:
            continue
        assert name in api["__module__"], f"trt.{name} is not in {flavour}"
        if rest and rest[0] != "__version__":
            assert rest[0] in api[name], f"trt.{name}.{rest[0]} is not in {flavour}"
        checked.append(chain)
    assert ("trt", "NetworkDefinitionCreationFlag", "STRONGLY_TYPED") in checked
    assert ("trt", "MemoryPoolType", "WORKSPACE") in checked
    assert ("trt", "TensorIOMode", "INPUT") in checked


def test_every_method_on_trt_objects_exists(apis: dict, flavour: str) -> None:
    api, other_only = apis[flavour], {n for f, names in FLAVOUR_ONLY.items() if f != flavour
                                      for n in names}
    checked = set()
    for (cls, attr), _, _ in typed_uses():
        if (cls, attr) in other_only or cls == "__module__":
            continue
        assert attr in api[cls], f"{cls}.{attr} is not in {flavour}"
        checked.add(f"{cls}.{attr}")
    assert {"IExecutionContext.execute_async_v3", "IExecutionContext.set_input_shape",
            "IExecutionContext.set_tensor_address", "IExecutionContext.get_tensor_shape",
            "ICudaEngine.num_io_tensors", "ICudaEngine.get_tensor_dtype",
            "ICudaEngine.get_tensor_mode", "Builder.build_serialized_network",
            "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.set_timing_cache",
            "ITimingCache.serialize", "OnnxParser.num_errors", "Runtime.deserialize_cuda_engine",
            "IExecutionContext.set_optimization_profile_async"} <= checked
    if flavour == "tensorrt-rtx":
        assert {"ICudaEngine.create_runtime_config", "IRuntimeConfig.create_runtime_cache",
                "IRuntimeConfig.set_runtime_cache", "IRuntimeCache.serialize",
                "IRuntimeCache.deserialize"} <= checked


def test_flavour_only_names_are_only_in_one_flavour_and_behind_a_condition(apis: dict) -> None:
    for flavour, names in FLAVOUR_ONLY.items():
        (other,) = set(MODULES) - {flavour}
        for cls, attr in names:
            assert attr in apis[flavour][cls], f"{cls}.{attr} is not in {flavour}"
            assert attr not in apis[other].get(cls, []), f"{cls}.{attr} is in both flavours"
    guarded = set()
    for pair, node, tree in typed_uses():
        for flavour, names in FLAVOUR_ONLY.items():
            if pair in names:
                assert _behind_flavour_condition(node, tree, FUNCTION_TAG[flavour]), \
                    f"{pair[0]}.{pair[1]} ({flavour} only) is used without a flavour condition"
                guarded.add(pair)
    assert ("IRuntimeCache", "deserialize") in guarded
    # The check can fail: an unguarded use is caught.
    bare = _linked(ast.parse("def load(engine):\n    engine.create_runtime_config()\n"
                             "def _rtx_x(runtime_cache):\n    runtime_cache.serialize()\n"
                             "def close(self):\n    _rtx_x(1)\n"
                             "def ok(self):\n    if self.flavour == RTX:\n        _rtx_x(1)\n"))
    serialize = next(n for n in ast.walk(bare) if isinstance(n, ast.Attribute)
                     and n.attr == "serialize")
    assert not _behind_flavour_condition(serialize, bare, "rtx")  # close() calls it bare


def test_every_io_dtype_the_runtime_reads_is_a_datatype(apis: dict, flavour: str) -> None:
    """TensorRtBackend maps engine dtypes by DataType name (trt_plan.NUMPY_DTYPES)."""
    from runtime.backends.trt_plan import NUMPY_DTYPES

    assert set(NUMPY_DTYPES) | {"name"} <= set(apis[flavour]["DataType"])


def test_removed_apis_are_gone_and_unused(apis: dict, flavour: str) -> None:
    bindings = apis[flavour]
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
