"""Resolve a model name to a local directory: a path as given, or a Hugging Face hub snapshot."""

from __future__ import annotations

import os
from pathlib import Path

INPUT_EMBEDDINGS = "word_embeddings.weight"  # name suffix of BERT-family input embeddings


def resolve_model_dir(name_or_path: str) -> Path:
    """Local directories are used as they are; hub names are fetched (or found in the HF cache)."""
    if os.path.isdir(name_or_path):
        return Path(name_or_path)
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
        )
    except Exception as err:  # noqa: BLE001 - hub errors come in many types; the message is what matters
        raise FileNotFoundError(f"model {name_or_path!r}: not a local directory and not reachable on the hub ({err})") from err


def model_tensor(model_dir: str | Path, suffix: str):
    """The tensor whose name ends with `suffix` (e.g. `word_embeddings.weight`), read from the
    model's safetensors without instantiating the model (and without unpickling anything)."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no .safetensors weights (convert the model with save_pretrained)")
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                if name.endswith(suffix):
                    return handle.get_tensor(name)
    raise KeyError(f"{model_dir}: no tensor named *{suffix}")
