#!/usr/bin/env bash
# trt-embed container entrypoint (also runs outside Docker with the project's venv on PATH).
#
#   MODEL=BAAI/bge-large-en-v1.5 ENGINE_CACHE=/cache docker/entrypoint.sh [server flags...]
#
# A plain exec of the launcher, so SIGTERM from Docker or Kubernetes reaches the server
# itself. Every decision (cache entry, reuse or rebuild, the replicas' lock, the build) is
# the launcher's (runtime/artifact_cache.py), and every variable is one of its flags'
# (server/flags.py): MODEL, HOST, PORT, BACKEND, PRECISION, ENGINE_CACHE or TRT_EMBED_CACHE,
# SERVED_MODEL_NAME, FORCE_BUILD=1, BUILD_ONLY=1, BUILDER_PYTHON, TRT_EMBED_API_KEY.
# PYTHON names the serving interpreter (python on PATH).
set -euo pipefail

: "${MODEL:?set MODEL to a Hugging Face hub id or a checkpoint directory}"
# A container listens on every interface; the launcher alone defaults to loopback.
export HOST=${HOST:-0.0.0.0}
exec "${PYTHON:-python}" -m server.launch_server --is-embedding "$@"
