#!/usr/bin/env bash
# trt-embed container entrypoint (also runs outside Docker with the project's venv on PATH).
#
#   MODEL=BAAI/bge-large-en-v1.5 ENGINE_CACHE=/cache docker/entrypoint.sh [server flags...]
#
# First start: builds the artifact (ONNX, and the TensorRT plan when BACKEND=tensorrt) into
# ENGINE_CACHE, keyed by model, GPU and TensorRT version; later starts reuse it. Then it
# execs the server, so SIGTERM from Docker or Kubernetes reaches the server itself.
#
# Environment:
#   MODEL          hub id or checkpoint directory (required)
#   HOST, PORT     where to listen (0.0.0.0, 30000)
#   ENGINE_CACHE   artifact cache, a volume shared by replicas (~/.cache/trt-embed/engines)
#   BACKEND        auto | tensorrt | onnxruntime (auto)
#   PRECISION      builder precision (fp32)
#   FORCE_BUILD=1  rebuild even if the cache is up to date
#   BUILD_ONLY=1   build (or check) the cache entry, then exit 0: a Kubernetes init step
#   SERVED_MODEL_NAME  the name /v1/models reports (MODEL)
#   PYTHON         the serving interpreter (python on PATH)
#   BUILDER_PYTHON the interpreter with torch for the export (PYTHON); the image has its own
set -euo pipefail

: "${MODEL:?set MODEL to a Hugging Face hub id or a checkpoint directory}"
HOST=${HOST:-0.0.0.0}
PORT=${PORT:-30000}
ENGINE_CACHE=${ENGINE_CACHE:-${HOME:-/tmp}/.cache/trt-embed/engines}
BACKEND=${BACKEND:-auto}
PRECISION=${PRECISION:-fp32}
PYTHON=${PYTHON:-python}
BUILDER_PYTHON=${BUILDER_PYTHON:-$PYTHON}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[entrypoint] %s\n' "$*" >&2; }

gpu_name() {
	local name=""
	if command -v nvidia-smi >/dev/null 2>&1; then
		# Only the GPUs given to this container are visible: the first one names the type.
		name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sed -n 1p) || name=""
	fi
	echo "${name:-cpu}"
}

tensorrt_version() {
	"$PYTHON" -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null || echo none
}

run_builder() { # $1: artifact dir, $2: "force" to rebuild over an existing entry
	local args=(--model-path "$MODEL" --output "$1" --precision "$PRECISION")
	# Only the TensorRT builder knows --backend; an ONNX-only build works without it.
	if [ "$BACKEND" = tensorrt ]; then args+=(--backend tensorrt); fi
	if [ "$2" = force ]; then args+=(--force); fi
	log "running: $BUILDER_PYTHON -m builder ${args[*]}"
	"$BUILDER_PYTHON" -m builder "${args[@]}"
}

gpu=$(gpu_name)
trt=$(tensorrt_version)
mkdir -p "$ENGINE_CACHE"
plan=$("$PYTHON" "$here/cache_key.py" --model "$MODEL" --cache "$ENGINE_CACHE" --gpu "$gpu" \
	--tensorrt "$trt" --backend "$BACKEND" --precision "$PRECISION" \
	${FORCE_BUILD:+--force})
artifact=$(sed -n 1p <<<"$plan")
mkdir -p "$(dirname "$artifact")"

# Replicas share the cache: one builds, the others wait for it and then reuse its work.
exec 9>"$artifact.lock"
if ! flock -n 9; then
	log "another replica is building $artifact; waiting for it"
	flock 9
	plan=$("$PYTHON" "$here/cache_key.py" --model "$MODEL" --cache "$ENGINE_CACHE" --gpu "$gpu" \
		--tensorrt "$trt" --backend "$BACKEND" --precision "$PRECISION")
fi
decision=$(sed -n 2p <<<"$plan")
log "model $MODEL, GPU $gpu, TensorRT $trt, backend $BACKEND, precision $PRECISION"
case "$decision" in
reuse:*) log "cache hit, reusing the artifact: ${decision#reuse: }" ;;
build:*)
	log "cache miss, building: ${decision#build: }"
	run_builder "$artifact" no
	;;
rebuild:*)
	log "cache stale, rebuilding: ${decision#rebuild: }"
	run_builder "$artifact" force
	;;
*)
	log "unexpected cache decision: $decision"
	exit 1
	;;
esac
exec 9>&-

if [ -n "${BUILD_ONLY:-}" ]; then
	log "BUILD_ONLY: $artifact is ready"
	exit 0
fi
log "serving $artifact on $HOST:$PORT"
exec "$PYTHON" -m server.launch_server --model-path "$artifact" --is-embedding \
	--host "$HOST" --port "$PORT" --backend "$BACKEND" \
	--served-model-name "${SERVED_MODEL_NAME:-$MODEL}" "$@"
