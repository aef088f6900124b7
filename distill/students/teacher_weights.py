"""Reading single tensors of a teacher checkpoint without instantiating the teacher."""

from __future__ import annotations

from pathlib import Path

import torch


def teacher_tensor(model_dir: str | Path, suffix: str) -> torch.Tensor:
    """The tensor whose name ends with `suffix` (e.g. `word_embeddings.weight`), from safetensors."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no .safetensors weights (convert the teacher with save_pretrained)")
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                if name.endswith(suffix):
                    return handle.get_tensor(name)
    raise KeyError(f"{model_dir}: no tensor named *{suffix}")
