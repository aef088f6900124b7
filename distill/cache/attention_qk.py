"""Attention targets recomputed from the cache instead of stored (`attention: recompute`).

TinyBERT's target (h W_qᵀ + b_q)(h W_kᵀ + b_k)ᵀ / √d needs only the stored layer input h and four small
tensors per layer, so no O(len²) term reaches disk (docs/design.md, "Store O(len), recompute O(len²)").
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from distill.cache.format import ATTENTION_QK_NAME
from distill.common.config_io import ConfigError
from distill.common.models import model_tensors

# BERT-family names of layer i's query/key projections (BERT, RoBERTa, MiniLM, ELECTRA encoders)
_PROJECTION = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.attention\.self\.(query|key)\.(weight|bias)$")
# Verified (tests compare recomputed with captured scores): post-LayerNorm BERT, MiniLM included. Pre-LayerNorm
# encoders with BERT's names (Megatron-BERT, RoBERTa-PreLayerNorm) or custom code (`auto_map`) would be wrong.
VERIFIED_MODEL_TYPES = ("bert",)


def check_recompute_verified(model_config: dict, model_dir: Path) -> None:
    """Refuse, in one line and before any labelling, a teacher the recompute was not verified against."""
    custom = " with custom code (auto_map)" if "auto_map" in model_config else ""
    if model_config.get("model_type") not in VERIFIED_MODEL_TYPES or custom:
        raise ConfigError(f"attention: recompute is verified only for {', '.join(VERIFIED_MODEL_TYPES)} teachers "
                          f"(post-LayerNorm BERT); {model_dir} is model_type {model_config.get('model_type')!r}"
                          f"{custom}: use attention: stored")


def write_attention_weights(directory: Path, model_dir: Path, layers: list[int], num_heads: int) -> None:
    """Save `layer.<l>.<query|key>.<weight|bias>` of 1-based `layers`, read without building the model.
    Refuses, in one line, a teacher whose names do not follow BERT's."""
    from safetensors.torch import save_file

    wanted = {layer - 1 for layer in layers}

    def ours(name: str) -> re.Match | None:
        match = _PROJECTION.search(name)
        return match if match and int(match.group(1)) in wanted else None

    found: dict[str, torch.Tensor] = {}
    for name, tensor in model_tensors(model_dir, lambda name: ours(name) is not None):
        layer, projection, kind = ours(name).groups()
        found[f"layer.{int(layer) + 1}.{projection}.{kind}"] = tensor
    expected = {f"layer.{l}.{p}.{w}" for l in layers for p in ("query", "key") for w in ("weight", "bias")}
    if expected - found.keys():
        raise KeyError(f"{model_dir}: attention: recompute needs BERT-style query/key weights of layers {layers} "
                       f"(encoder.layer.N.attention.self.query/key); missing {sorted(expected - found.keys())[:2]}; "
                       "use attention: stored for this teacher")
    tensors = {name: found[name].float().contiguous() for name in sorted(expected)}
    save_file(tensors, str(directory / ATTENTION_QK_NAME), metadata={"num_heads": str(num_heads)})


def read_attention_weights(teacher_files: Path) -> dict[int, dict[str, torch.Tensor]]:
    """{layer: {query.weight, query.bias, key.weight, key.bias, num_heads}} from a cache."""
    from safetensors import safe_open

    out: dict[int, dict[str, torch.Tensor]] = {}
    with safe_open(str(teacher_files / ATTENTION_QK_NAME), framework="pt") as handle:
        heads = int(handle.metadata()["num_heads"])
        for name in handle.keys():
            _, layer, rest = name.split(".", 2)
            out.setdefault(int(layer), {"num_heads": heads})[rest] = handle.get_tensor(name)
    return out


def recompute_scores(hidden: torch.Tensor, mask: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """Pre-softmax scores [B, heads, T, T] of one layer from its input [B, T, H], zero outside real pairs."""
    heads = int(weights["num_heads"])
    batch, width, _ = hidden.shape
    hidden = hidden.to(weights["query.weight"].dtype)
    query = torch.nn.functional.linear(hidden, weights["query.weight"], weights["query.bias"])
    key = torch.nn.functional.linear(hidden, weights["key.weight"], weights["key.bias"])
    head_dim = query.shape[-1] // heads
    query = query.view(batch, width, heads, head_dim).transpose(1, 2)
    key = key.view(batch, width, heads, head_dim).transpose(1, 2)
    scores = torch.matmul(query, key.transpose(2, 3)) * head_dim ** -0.5
    pair = (mask[:, :, None] & mask[:, None, :])[:, None]
    return scores * pair
