"""Model directories: resolve a name (a path, or a Hugging Face hub snapshot), check it holds what
every stage needs, and read single tensors without instantiating the model."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distill.errors import UserError

INPUT_EMBEDDINGS = "word_embeddings.weight"  # name suffix of BERT-family input embeddings


def resolve_model_dir(name_or_path: str) -> Path:
    """Local directories are used as they are; hub names are fetched (or found in the HF cache)."""
    if os.path.isdir(name_or_path):
        return Path(name_or_path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as err:  # noqa: BLE001 - hub errors come in many types; the message is what matters
        raise FileNotFoundError(f"model {name_or_path!r}: not a local directory and not reachable on the hub ({err})") from err


def at_masked(values, positions):
    """Rows of `values` [B, T, ...] at the masked `positions` [B, M] (−1 = padding), row-major:
    [N, ...], the order the cache's per-masked columns use."""
    import torch

    real = positions >= 0
    rows = torch.arange(positions.shape[0], device=positions.device)[:, None].expand_as(positions)[real]
    return values[rows, positions[real]]


def at_words(values, word_starts):
    """`values` [B, T, ...] at each word's first piece, `word_starts` [B, W] (−1 = padding):
    [B, W, ...], zero at padding, so a token task's logits line up with the cache's per-word rows."""
    import torch

    real = word_starts >= 0
    index = word_starts.clamp_min(0)
    gathered = torch.gather(values, 1, index.view(*index.shape, *([1] * (values.dim() - 2))).expand(
        *index.shape, *values.shape[2:]))
    return gathered * real.view(*real.shape, *([1] * (values.dim() - 2))).to(gathered.dtype)


SAFETENSORS_PATTERN = "*.safetensors"
TORCH_WEIGHTS_PATTERN = "pytorch_model*.bin"  # torch.save of a state dict, read with weights_only=True
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "vocab.json",
                   "sentencepiece.bpe.model")


class ModelFilesError(UserError, FileNotFoundError):
    """A model directory lacks weights or a tokenizer, or holds weights we will not unpickle (one line)."""


def weight_files(model_dir: str | Path) -> list[Path]:
    """Safetensors files if any, else `pytorch_model*.bin` files (loaded with weights_only=True)."""
    model_dir = Path(model_dir)
    return sorted(model_dir.glob(SAFETENSORS_PATTERN)) or sorted(model_dir.glob(TORCH_WEIGHTS_PATTERN))


def _torch_state(file: Path) -> dict:
    import torch

    try:
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - unpickling refusals come in several types
        raise ModelFilesError(f"{file}: cannot be read without unpickling arbitrary objects ({type(err).__name__}); "
                              "re-save the model with save_pretrained (safetensors)") from None


def check_model_files(model_dir: str | Path, tokenizer_dir: str | Path | None = None) -> None:
    """Refuse, in one line, a model directory lacking config, safe weights or (with `tokenizer_dir`) tokenizer."""
    from safetensors import safe_open

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise ModelFilesError(f"{model_dir}: no config.json (save the fine-tuned model with save_pretrained)")
    files = weight_files(model_dir)
    if not files:
        raise ModelFilesError(f"{model_dir}: no weights (model.safetensors or pytorch_model.bin); save the fine-tuned "
                              "model with save_pretrained")
    for file in files:
        if file.suffix == ".safetensors":
            try:
                with safe_open(str(file), framework="pt"):
                    pass
            except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
                raise ModelFilesError(f"{file}: not a readable safetensors file ({err})") from None
        else:
            _torch_state(file)
    if tokenizer_dir is not None and not any((Path(tokenizer_dir) / name).exists() for name in TOKENIZER_FILES):
        raise ModelFilesError(f"{tokenizer_dir}: no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); save the "
                              "tokenizer with the model (tokenizer.save_pretrained) or pass --tokenizer")


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_complete(model_class, model_dir: str | Path, **kwargs: Any):
    """`model_class.from_pretrained(model_dir)`, refused in one line when the weights lack a tensor the model
    has: transformers would fill it with random values (a missing head would label every row at random,
    differently in each actor) and only say so in a load report."""
    with _quiet_transformers():  # no progress bar or load report: the refusal below says what matters in one line
        model, info = model_class.from_pretrained(model_dir, output_loading_info=True, **kwargs)
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ModelFilesError(f"{model_dir}: the weights lack {shown}, which {type(model).__name__} would fill with "
                              "random values; pass the complete model (save_pretrained of the fine-tuned model)")
    return model


def model_tensors(model_dir: str | Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, Any]]:
    """(name, tensor) of every weight whose name `wanted` accepts, read without instantiating the model."""
    from safetensors import safe_open

    files = weight_files(model_dir)
    if not files:
        raise ModelFilesError(f"{model_dir}: no weights (model.safetensors or pytorch_model.bin)")
    for file in files:
        if file.suffix == ".safetensors":
            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():
                    if wanted(name):
                        yield name, handle.get_tensor(name)
        else:
            for name, value in _torch_state(file).items():
                if wanted(name):
                    yield name, value.clone()


def model_tensor(model_dir: str | Path, suffix: str):
    """The tensor whose name ends with `suffix` (e.g. `word_embeddings.weight`)."""
    for _, tensor in model_tensors(model_dir, lambda name: name.endswith(suffix)):
        return tensor
    raise KeyError(f"{model_dir}: no tensor named *{suffix}")
