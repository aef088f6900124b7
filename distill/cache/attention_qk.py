"""Attention targets recomputed from the cache instead of stored (`attention: recompute`, `relation`).

TinyBERT's target (h W_qᵀ + b_q)(h W_kᵀ + b_k)ᵀ / √d needs only the stored layer input h and four small
tensors per layer, so no O(len²) term reaches disk (docs/design.md, "Store O(len), recompute O(len²)").
MiniLM's value relation V Vᵀ / √d, V = h W_vᵀ + b_v, needs W_v and b_v besides.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from distill.cache.format import ATTENTION_QK_NAME
from distill.common.config_io import ConfigError
from distill.common.models import model_tensors

# BERT-family names of layer i's query/key projections (BERT, RoBERTa, MiniLM, ELECTRA encoders)
_PROJECTION = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)$")
# Verified (tests compare recomputed with captured scores): post-LayerNorm BERT, MiniLM included. Pre-LayerNorm
# encoders with BERT's names (Megatron-BERT, RoBERTa-PreLayerNorm) or custom code (`auto_map`) would be wrong.
VERIFIED_MODEL_TYPES = ("bert",)


def check_recompute_verified(model_config: dict, model_dir: Path) -> None:
    """Refuse, in one line and before any labelling, a teacher the recompute was not verified against."""
    custom = " with custom code (auto_map)" if "auto_map" in model_config else ""
    if model_config.get("model_type") not in VERIFIED_MODEL_TYPES or custom:
        raise ConfigError(f"recomputed attention (attention: recompute, the relation feature) is verified only "
                          f"for {', '.join(VERIFIED_MODEL_TYPES)} teachers (post-LayerNorm BERT); {model_dir} is "
                          f"model_type {model_config.get('model_type')!r}{custom}: use attention: stored, without "
                          "relation")


def write_attention_weights(directory: Path, model_dir: Path, projections: dict[int, tuple[str, ...]],
                            num_heads: int) -> None:
    """Save `layer.<l>.<query|key|value>.<weight|bias>` of the 1-based layers in `projections` ({layer: the
    projections it needs}), read without building the model. Refuses, in one line, names unlike BERT's."""
    from safetensors.torch import save_file

    def ours(name: str) -> re.Match | None:
        match = _PROJECTION.search(name)
        return match if match and match.group(2) in projections.get(int(match.group(1)) + 1, ()) else None

    found: dict[str, torch.Tensor] = {}
    for name, tensor in model_tensors(model_dir, lambda name: ours(name) is not None):
        layer, projection, kind = ours(name).groups()
        found[f"layer.{int(layer) + 1}.{projection}.{kind}"] = tensor
    expected = {f"layer.{l}.{p}.{w}" for l, needed in projections.items() for p in needed for w in ("weight", "bias")}
    if expected - found.keys():
        raise KeyError(f"{model_dir}: recomputed attention needs BERT-style projection weights of layers "
                       f"{sorted(projections)} (encoder.layer.N.attention.self.query/key/value); missing "
                       f"{sorted(expected - found.keys())[:2]}; use attention: stored (no relation) for this teacher")
    tensors = {name: found[name].float().contiguous() for name in sorted(expected)}
    save_file(tensors, str(directory / ATTENTION_QK_NAME), metadata={"num_heads": str(num_heads)})


def read_attention_weights(teacher_files: Path) -> dict[int, dict[str, torch.Tensor]]:
    """{layer: {query.weight, query.bias, key.weight, key.bias, [value.weight, value.bias,] num_heads}} from a cache."""
    from safetensors import safe_open

    out: dict[int, dict[str, torch.Tensor]] = {}
    with safe_open(str(teacher_files / ATTENTION_QK_NAME), framework="pt") as handle:
        heads = int(handle.metadata()["num_heads"])
        for name in handle.keys():
            _, layer, rest = name.split(".", 2)
            out.setdefault(int(layer), {"num_heads": heads})[rest] = handle.get_tensor(name)
    return out


def _per_head(hidden: torch.Tensor, weights: dict[str, torch.Tensor], projection: str) -> torch.Tensor:
    """One projection of a layer's input [B, T, H], split into heads: [B, heads, T, head_dim]."""
    heads = int(weights["num_heads"])
    batch, width, _ = hidden.shape
    hidden = hidden.to(weights[f"{projection}.weight"].dtype)
    projected = torch.nn.functional.linear(hidden, weights[f"{projection}.weight"], weights[f"{projection}.bias"])
    return projected.view(batch, width, heads, -1).transpose(1, 2)


def scaled_relation(first: torch.Tensor, second: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """first · secondᵀ / √head_dim per head [B, heads, T, T], zero outside real pairs (the students' too)."""
    scores = torch.matmul(first, second.transpose(2, 3)) * first.shape[-1] ** -0.5
    pair = (mask[:, :, None] & mask[:, None, :])[:, None]
    return scores * pair


def recompute_scores(hidden: torch.Tensor, mask: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """Pre-softmax scores [B, heads, T, T] of one layer from its input [B, T, H], zero outside real pairs."""
    return scaled_relation(_per_head(hidden, weights, "query"), _per_head(hidden, weights, "key"), mask)


def recompute_value_relation(hidden: torch.Tensor, mask: torch.Tensor,
                             weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """MiniLM's pre-softmax value relation V Vᵀ / √head_dim [B, heads, T, T] of one layer from its input."""
    values = _per_head(hidden, weights, "value")
    return scaled_relation(values, values, mask)
