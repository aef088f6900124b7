"""Top-k KD against full-vocabulary KD: golden values by hand, the lower-bound property of the tail
bucket, and the error on a tiny masked LM's real vocabulary (30 522 words) as k varies."""

from __future__ import annotations

import math

import pytest
import torch

from distill.cache.writer import topk_targets
from distill.losses.topk import full_kl, topk_kl

KS = (1, 8, 32, 128, 1024, 30522)


def test_tail_bucket_and_renormalised_kl_match_hand_computed_values():
    # teacher z = (2, 1, 0, 0) at T = 1, k = 2; student z = (0, 0, 0, 0)
    teacher, student = torch.tensor([[2.0, 1.0, 0.0, 0.0]]), torch.zeros(1, 4)
    indices, values, lse = topk_targets(teacher, 2, 1.0)
    z = math.exp(2) + math.exp(1) + 2
    p = [math.exp(2) / z, math.exp(1) / z]
    tail = 1 - sum(p)
    bucket = p[0] * math.log(p[0] / 0.25) + p[1] * math.log(p[1] / 0.25) + tail * math.log(tail / 0.5)
    assert topk_kl(student, indices, values, lse, 1.0, "bucket").item() == pytest.approx(bucket, rel=1e-5)
    q = [math.exp(2) / (math.exp(2) + math.exp(1)), math.exp(1) / (math.exp(2) + math.exp(1))]
    renormalised = q[0] * math.log(q[0] / 0.5) + q[1] * math.log(q[1] / 0.5)
    assert topk_kl(student, indices, values, None, 1.0, "renormalize").item() == pytest.approx(renormalised, rel=1e-5)
    # T² scaling, as full KD: at T = 2 the bucket KL of the tempered distributions times 4
    indices, values, lse = topk_targets(teacher, 4, 2.0)
    assert topk_kl(student, indices, values, lse, 2.0).item() == pytest.approx(full_kl(student, teacher, 2.0).item(), rel=1e-5)


@pytest.fixture(scope="module")
def mlm_logits(tiny_mlm_dir):
    """Teacher and student vocabulary logits at masked positions of real sentences: the tiny random
    masked LM is the teacher, the same model with perturbed weights the student."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    teacher = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir).eval()
    student = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(0.3 * parameter.std() * torch.randn(parameter.shape, generator=generator))
    texts = ["the film is a quiet , moving portrait of a family .", "an overlong , dull and predictable thriller",
             "it is one of the best movies of the year", "the acting is fine but the plot goes nowhere"]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        t, s = teacher(**encoded).logits, student(**encoded).logits
    real = encoded["attention_mask"].bool()
    return t[real], s[real]  # every real position as a "masked" one: 40-odd predictions


def test_topk_kd_approaches_full_kd_as_k_grows(mlm_logits):
    teacher, student = mlm_logits
    student = student.clone().requires_grad_(True)
    full = full_kl(student, teacher, 2.0)
    (full_grad,) = torch.autograd.grad(full, student)
    rows = []
    for k in KS:
        indices, values, lse = topk_targets(teacher, k, 2.0)
        values = values.half().float()  # as cached: float16 values, float32 normaliser
        row = {"k": k}
        for tail in ("bucket", "renormalize"):
            loss = topk_kl(student, indices, values, lse, 2.0, tail)
            (grad,) = torch.autograd.grad(loss, student)
            row[tail] = (loss.item(), torch.nn.functional.cosine_similarity(grad.flatten(), full_grad.flatten(), dim=0).item())
        rows.append(row)
    print(f"\nfull KD (T=2) = {full.item():.5f}")
    for row in rows:
        print(f"k={row['k']:>6}  bucket loss {row['bucket'][0]:.5f} grad cos {row['bucket'][1]:.4f}   "
              f"renormalised loss {row['renormalize'][0]:.5f} grad cos {row['renormalize'][1]:.4f}")
    bucket = [r["bucket"][0] for r in rows]
    assert all(b <= full.item() * (1 + 1e-3) for b in bucket)  # merging outcomes never raises a KL
    assert all(later >= earlier - 1e-4 for earlier, later in zip(bucket, bucket[1:]))  # refining only adds
    assert bucket[-1] == pytest.approx(full.item(), rel=2e-3)  # k = V: the full KL (float16 values)
    cosines = [r["bucket"][1] for r in rows]
    assert cosines[-1] > 0.999 and cosines[KS.index(1024)] > cosines[0]
