"""What a stage's output depends on: content fingerprints, so reruns can be skipped (as Hugging Face `datasets`
keys an output by input, stage, version, config and models), and the library versions every manifest records."""

from __future__ import annotations

import importlib.metadata
import platform

from distill.hashing import (  # noqa: F401 - re-exported: the storage API
    fingerprint_json, hash_file, hash_file_sampled, hash_path, model_fingerprint,
)

RECORDED = ("pyarrow", "ray", "spacy", "numpy", "torch", "transformers", "datasets", "distill-data")


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions(names: tuple[str, ...] = RECORDED) -> dict[str, str | None]:
    return {"python": platform.python_version(), **{name: package_version(name) for name in names}}
