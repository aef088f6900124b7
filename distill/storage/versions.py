"""Library versions recorded in every manifest, so a cache says what produced it."""

from __future__ import annotations

import importlib.metadata
import platform

RECORDED = ("pyarrow", "ray", "spacy", "numpy", "torch", "transformers", "datasets", "distill-data")


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions(names: tuple[str, ...] = RECORDED) -> dict[str, str | None]:
    return {"python": platform.python_version(), **{name: package_version(name) for name in names}}
