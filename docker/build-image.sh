#!/usr/bin/env bash
# Build an appliance image the way `make image` / `make image-gpu` do, on a machine that may
# have no registry access. Says what it did at every step.
#
#   docker/build-image.sh cpu [TAG] [docker build args...]      -> trt-embed:cpu
#   docker/build-image.sh gpu [TAG] [docker build args...]      -> trt-embed:gpu
#   docker/build-image.sh lb  [TAG]                              -> trt-embed:lb (nginx)
#
# 1. A Docker CLI that builds with BuildKit (the Dockerfile lists per-file ignores and
#    multi-stage targets that the legacy builder does not honour): `docker buildx`, or a CLI
#    with BuildKit built in (Debian's docker.io 20.10 at /usr/bin/docker).
# 2. The base image: docker/base-image.sh (local, pulled, or built with mmdebstrap).
# 3. torch: the host's CPU wheel (torch==2.13.0+cpu, pip's find-links) is staged in
#    docker/wheels/, so the build needs no PyTorch index; without one, the index is used.
# 4. The gpu target needs NVIDIA's CUDA base image (nvcr.io) and TensorRT 11 (NVIDIA's wheel
#    index). Where they cannot be had, the gpu stages are skipped with a message and the
#    rtx-plan stage is built instead: a TensorRT-for-RTX plan compiled on this CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: docker/build-image.sh cpu|gpu|lb [TAG] [docker build args...]}
tag=${2:-trt-embed:$target}
shift $(( $# >= 2 ? 2 : 1 ))
python_image=${PYTHON_IMAGE:-python:3.11-slim-bookworm}
cuda_image=${CUDA_IMAGE:-nvcr.io/nvidia/cuda:13.1.1-runtime-ubuntu24.04}

if docker buildx version >/dev/null 2>&1; then
    build=(docker buildx build --load); cli=docker
elif [ -x /usr/bin/docker ] && DOCKER_BUILDKIT=1 /usr/bin/docker build --help 2>/dev/null \
        | grep -q -- '--ssh'; then
    build=(env DOCKER_BUILDKIT=1 /usr/bin/docker build); cli=/usr/bin/docker
else
    echo "build-image: no Docker CLI with BuildKit here (docker buildx, or docker.io's" \
         "/usr/bin/docker); install one (apt-get install -y docker.io)" >&2
    exit 1
fi
echo "build-image: building with: ${build[*]}"

DOCKER=$cli docker/base-image.sh "$python_image"

wheel=""
for dir in ${PIP_FIND_LINKS:-} /opt/wheels $(pip config get global.find-links 2>/dev/null || true); do
    found=$(find "$dir" -maxdepth 1 -name 'torch-2.13.0+cpu-cp311-*.whl' 2>/dev/null | head -1)
    if [ -n "$found" ]; then wheel=$found; break; fi
done
rm -f docker/wheels/*.whl
if [ -n "$wheel" ]; then
    ln "$wheel" docker/wheels/ 2>/dev/null || cp "$wheel" docker/wheels/
    echo "build-image: torch: staged $wheel in docker/wheels (no PyTorch index needed)"
    set -- --build-arg TORCH_INDEX= "$@"
else
    echo "build-image: torch: no local CPU wheel; the build takes it from the PyTorch CPU index"
fi

common=(--network host -f docker/Dockerfile --build-arg "PYTHON_IMAGE=$python_image")
if [ "$target" = gpu ]; then
    if ! "$cli" image inspect "$cuda_image" >/dev/null 2>&1 \
            && ! timeout "${PULL_TIMEOUT:-120}" "$cli" pull "$cuda_image" >/dev/null 2>&1; then
        echo "build-image: SKIPPED the gpu stages: $cuda_image is not local and its registry" \
             "does not answer (the stages also need NVIDIA's wheel index for TensorRT 11)."
        echo "build-image: building the rtx-plan stage instead (a TensorRT-for-RTX plan" \
             "compiled on this CPU) as ${tag%%:*}:rtx-plan"
        "${build[@]}" "${common[@]}" --build-arg BAKE_DEFAULT=1 --target rtx-plan \
            -t "${tag%%:*}:rtx-plan" "$@" .
        "$cli" run --rm --entrypoint sh "${tag%%:*}:rtx-plan" -c \
            'find /cache -name "*.plan" -exec ls -l {} +'
        exit 0
    fi
    "${build[@]}" "${common[@]}" --build-arg "CUDA_IMAGE=$cuda_image" --target gpu -t "$tag" "$@" .
else
    "${build[@]}" "${common[@]}" --target "$target" -t "$tag" "$@" .
fi
echo "build-image: $tag: $("$cli" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.2f GB", $1/1e9}')"
