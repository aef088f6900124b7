"""What travels with a cache under `teacher_files/`: the teacher's config, tokenizer and the input-embedding
rows the cache uses, so students train with no teacher present (those copying encoder weights take `--teacher`)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.cache.format import ATTENTION_QK_NAME, EMBEDDINGS_NAME, TEACHER_FILES_DIR
from distill.common.models import INPUT_EMBEDDINGS, model_tensor
from distill.storage.atomic import TEMP_MARKER
from distill.storage.fingerprint import hash_file

log = logging.getLogger(__name__)


def write_teacher_files(cache_dir: Path, model_dir: Path, tokenizer, token_ids: np.ndarray,
                        projections: dict[int, tuple[str, ...]] | None = None,
                        num_heads: int = 0) -> dict[str, dict[str, Any]]:
    """Write `<cache_dir>/teacher_files/` (replacing any older copy in one rename) and return
    `{file: {bytes, sha256}}` for the manifest. `projections`: layers recomputed from hidden states, and
    the query/key(/value) weights of each, which travel too (`distill.cache.attention_qk`)."""
    final = cache_dir / TEACHER_FILES_DIR
    tmp = cache_dir / f"{TEACHER_FILES_DIR}{TEMP_MARKER}dir"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(model_dir / "config.json", tmp / "config.json")
    tokenizer.save_pretrained(tmp)
    try:
        table = model_tensor(model_dir, INPUT_EMBEDDINGS).float()
    except (FileNotFoundError, KeyError) as err:
        log.warning("no input-embedding rows in the cache (%s): a BiLSTM with init_embeddings: teacher will need --teacher", err)
    else:
        from safetensors.torch import save_file

        ids = torch.from_numpy(np.asarray(token_ids, dtype=np.int64))
        save_file({"token_ids": ids, "rows": table[ids].contiguous(), "mean": table.mean(dim=0)}, str(tmp / EMBEDDINGS_NAME))
        _readable(tmp / EMBEDDINGS_NAME)
    if projections:
        from distill.cache.attention_qk import write_attention_weights

        write_attention_weights(tmp, model_dir, projections, num_heads)
        _readable(tmp / ATTENTION_QK_NAME)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return {f.name: {"bytes": f.stat().st_size, "sha256": hash_file(f)} for f in sorted(final.iterdir()) if f.is_file()}


def _readable(path: Path) -> None:
    """safetensors writes 0600 files; a cache is handed to other users, so give it the umask's mode."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def read_input_embeddings(cache_dir: Path) -> dict[str, torch.Tensor] | None:
    """`token_ids` [n], `rows` [n, H] (the teacher's input embeddings of those ids, float32) and
    `mean` [H] (over the teacher's whole vocabulary), or None if the cache has none."""
    path = cache_dir / TEACHER_FILES_DIR / EMBEDDINGS_NAME
    if not path.exists():
        return None
    from safetensors.torch import load_file

    return load_file(str(path))
