"""Labeling building blocks without Ray: score capture, bucketing, column encodings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from distill import attention_capture as attention
from distill.common.batching import length_buckets, padded_tokens
from distill.cache.encoding import (
    ARROW_TYPES,
    dequantize_int8,
    fixed_array,
    flat_values,
    from_numpy,
    list_lengths,
    quantize_int8,
    ragged_array,
    to_numpy,
)


def _tiny_model(num_layers: int = 3):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=4,
                        intermediate_size=37, num_labels=3, initializer_range=0.3)
    model = BertForSequenceClassification(config).eval()
    model.set_attn_implementation(attention.register())
    return model


def test_pre_softmax_scores_equal_manual_qk_over_sqrt_d():
    model = _tiny_model()
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    seen = {}

    def keep(name):
        return lambda module, args, output: seen.__setitem__(name, output.detach())

    for i, layer in enumerate(model.bert.encoder.layer):
        layer.attention.self.query.register_forward_hook(keep(f"q{i + 1}"))
        layer.attention.self.key.register_forward_hook(keep(f"k{i + 1}"))
    with torch.inference_mode(), attention.ScoreRecorder([1, 3]) as recorder:
        captured = model(input_ids=ids, attention_mask=mask).logits
    recorder.check(3)
    assert set(recorder.scores) == {1, 3}
    for layer in (1, 3):
        q = seen[f"q{layer}"].view(2, 5, 4, 8).transpose(1, 2)
        k = seen[f"k{layer}"].view(2, 5, 4, 8).transpose(1, 2)
        manual = q @ k.transpose(-1, -2) / 8 ** 0.5
        torch.testing.assert_close(recorder.scores[layer], manual, rtol=1e-5, atol=1e-5)
    # capture leaves the model's output unchanged (same as SDPA attention)
    model.set_attn_implementation("sdpa")
    with torch.inference_mode():
        plain = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(captured, plain, rtol=1e-5, atol=1e-5)


def test_capture_is_off_outside_a_recorder():
    """A recorder holds the requested layers' scores of the forward passes run inside its block,
    and nothing from a forward pass run after the block."""
    model = _tiny_model(2)
    ids = torch.tensor([[2, 5, 3]])
    with torch.inference_mode():
        with attention.ScoreRecorder([1]) as recorder:
            model(input_ids=ids)
        assert recorder.calls == 2 and set(recorder.scores) == {1}
        assert recorder.scores[1].shape == (1, 4, 3, 3)  # [batch, heads, q, k]
        kept = recorder.scores[1]
        model(input_ids=torch.tensor([[2, 5, 6, 7, 3]]))  # after the block: a longer input
    assert recorder.calls == 2, "a forward pass outside the block went through the recorder"
    assert set(recorder.scores) == {1} and recorder.scores[1] is kept


def test_length_buckets_cover_every_row_once_and_respect_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=1000)
    batches = length_buckets(lengths, batch_size=64, max_batch_tokens=2048)
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(1000))
    for batch in batches:
        assert len(batch) <= 64
        assert len(batch) * lengths[batch].max() <= 2048 or len(batch) == 1
    # shortest first, ties in input order: deterministic
    assert np.array_equal(lengths[order], np.sort(lengths))
    # bucketing pads far less than fixed batches in input order
    fixed = [np.arange(i, min(i + 64, 1000)) for i in range(0, 1000, 64)]
    assert padded_tokens(lengths, batches) < 0.6 * padded_tokens(lengths, fixed)


def test_ragged_column_round_trips_without_padding():
    lengths = np.array([3, 1, 4])
    values = np.arange(8 * 5, dtype=np.float16).reshape(8, 5)
    column = ragged_array(values, lengths, pa.float16())
    assert column.type == pa.list_(pa.list_(pa.float16(), 5))
    assert list_lengths(column).tolist() == [3, 1, 4]
    assert np.array_equal(flat_values(column).reshape(8, 5), values)
    assert np.array_equal(flat_values(column.slice(1, 2)).reshape(5, 5), values[3:])  # offsets respected


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_float_storage_dtypes_round_trip(dtype):
    tensor = torch.randn(6, 4, 3)
    column = fixed_array(to_numpy(tensor, dtype), ARROW_TYPES[dtype])
    back = from_numpy(flat_values(column), dtype).float().view(6, 4, 3)
    tolerance = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 0.0}[dtype]
    torch.testing.assert_close(back, tensor, rtol=tolerance, atol=tolerance)


def test_int8_per_vector_quantization_error_is_small():
    torch.manual_seed(0)
    hidden = torch.randn(500, 384) * torch.rand(500, 1) * 10  # vectors of very different norms
    hidden[0] = 0  # an all-zero vector keeps scale 1 and decodes to zeros
    values, scale = quantize_int8(hidden)
    assert values.dtype == torch.int8 and scale.shape == (500,)
    back = dequantize_int8(values, scale)
    assert torch.equal(back[0], torch.zeros(384))
    relative = (back - hidden).norm(dim=1)[1:] / hidden.norm(dim=1)[1:]
    assert relative.max() < 0.02  # per-vector scale: error relative to each vector's own norm
    assert ((back - hidden).abs() <= scale[:, None] / 2 + 1e-6).all()  # at most half a step
