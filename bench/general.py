"""Bytes per example of general-distillation targets, each beside the student-side error it costs and
the training-step time it adds, against a named baseline per table (docs/results.md, "General
distillation targets").

    python -m bench.general            # about 10 min on 2 CPU cores
    python -m bench.general --quick    # fewer sequences and steps

Inputs: WikiText-2 validation paragraphs packed as pipelines/configs/pipeline/general/tinybert.yaml
packs them, and the first 2 000 SST-2 sentences; targets from the label sections of
pipelines/configs/pipeline/general/{distilbert,tinybert}.yaml, in float32. Teachers: MiniLM-L6, and
for masked-LM targets MiniLM-L6 with an LM head trained for --head-steps on WikiText-2's test split.
1. Masked-LM targets: full-vocabulary logits (baseline) vs top-k: KD loss error, gradient cosine,
   step time of a 3-layer student copied from the teacher.
2. Attention: stored scores (baseline) vs recomputed from stored hidden states: score error, step
   time of the 4×312 student of `tinybert_general.yaml`.
3. Hidden states: float16 vs int8, attention recomputed: hidden-loss and score error, step time.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import (
    ORIGINALS_ONLY, REPO, SENTENCE_LABEL, SST2_TRAIN, augmentation, machine_line, minilm, minilm_classifier,
    pipeline_section, recipe, rows_by_uid, run_timed, sst2_head, start_ray, wikitext_paragraphs,
)
from distill import corpus
from distill.cache import load
from distill.common.models import at_masked
from distill.label import LabelConfig
from distill.label import run as label_run
from distill.losses.topk import full_kl, topk_kl
from distill.teacher_batch import TeacherBatch
from distill.train.loop import train


def mlm_teacher(directory: Path, steps: int) -> Path:
    """MiniLM-L6 under BertForMaskedLM, its LM head trained on masked WikiText-2 test paragraphs
    (encoder frozen: features computed once), so its predictions are a masked LM's, not noise."""
    from transformers import AutoTokenizer, BertForMaskedLM

    if (directory / "config.json").exists():
        return directory
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm())
    model = BertForMaskedLM.from_pretrained(minilm()).eval()
    texts = [line for line in wikitext_paragraphs("test") if len(line) > 200][:600]
    features, targets = [], []
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            encoded = tokenizer(texts[start : start + 32], truncation=True, max_length=128, padding=True,
                                return_tensors="pt")
            ids = encoded["input_ids"].clone()
            special = torch.tensor([[t in tokenizer.all_special_ids for t in row] for row in ids.tolist()])
            chosen = (torch.rand(ids.shape) < 0.15) & encoded["attention_mask"].bool() & ~special
            masked = ids.masked_fill(chosen, tokenizer.mask_token_id)
            hidden = model.bert(input_ids=masked, attention_mask=encoded["attention_mask"]).last_hidden_state
            features.append(hidden[chosen])
            targets.append(ids[chosen])
    features, targets = torch.cat(features), torch.cat(targets)
    head = model.cls
    optimizer = torch.optim.AdamW([p for n, p in head.named_parameters() if "decoder.weight" not in n], lr=1e-3)
    for step in range(steps):
        batch = torch.randint(0, len(targets), (512,))
        loss = torch.nn.functional.cross_entropy(head(features[batch]), targets[batch])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    print(f"MLM proxy head: {steps} steps on {len(targets)} masked WikiText-2 test positions, "
          f"last CE {loss.item():.2f}")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def corpus_dir(out: Path, documents: int, tokenizer: str) -> Path:
    """The first `documents` paragraphs of WikiText-2 valid (headings and blank lines dropped), as the
    TinyBERT general-distillation data config packs them."""
    source = out / f"wikitext-valid-{documents}.txt"
    source.write_text("\n".join(wikitext_paragraphs("valid")[:documents]) + "\n", encoding="utf-8")
    config = pipeline_section("general/tinybert", "corpus", corpus.CorpusConfig, {"tokenizer": tokenizer})
    return corpus.run(source, out / f"corpus-{documents}", config).output_dir


def label(source: Path, out: Path, pipeline: str, values: dict) -> tuple[Path, float]:
    """Label `source` with the label section of `pipelines/configs/pipeline/<pipeline>.yaml`, in float32."""
    config = pipeline_section(pipeline, "label", LabelConfig, {"precision": "float32", **values})
    result = label_run(source, out, config)
    return result.cache_dir, result.manifest["totals"]["bytes_per_example"]


def step_seconds(cache_dir: Path, run_dir: Path, steps: int) -> float:
    """Seconds per TinyBERT intermediate-stage step of the 4×312 student (`tinybert_general.yaml`)."""
    config = recipe("tinybert_general", {"max_steps": steps, "batch_size": 32, "log_every": steps,
                                         "checkpoint_every": 10_000, "seed": 0})
    result = train(config, cache_dir, run_dir, verify="size")
    return result.seconds / result.steps


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm().clamp_min(1e-12))


def attention_error(reference: Path, candidate: Path, rows: int, layers: list[int]) -> float:
    """Relative Frobenius error of `candidate`'s (recomputed) scores against `reference`'s stored ones."""
    stored, other = load(reference), load(candidate)
    want = stored.batch(list(range(rows)))
    got = TeacherBatch(other.batch(rows_by_uid(other, stored.table.column("uid").to_pylist()[:rows])),
                       other.dims.num_layers, attention_weights=other.attention_weights())
    return max(relative_error(got.attention(layer), want[f"attention_{layer}"]) for layer in layers)


def hidden_error(reference: Path, candidate: Path, rows: int, layers: list[int]) -> float:
    """Relative error of the TinyBERT hidden loss of one random student batch: int8 vs float16 targets."""
    from distill.losses.registry import masked_mse

    stored, other = load(reference), load(candidate)
    want = stored.batch(list(range(rows)))
    got = other.batch(rows_by_uid(other, stored.table.column("uid").to_pylist()[:rows]))
    generator = torch.Generator().manual_seed(0)
    mask = want["attention_mask"].bool()
    errors = []
    for layer in layers:
        name = "embedding" if layer == 0 else f"hidden_{layer}"
        student = want[name] + 0.5 * want[name].std() * torch.randn(want[name].shape, generator=generator)
        exact, approx = masked_mse(student, want[name], mask), masked_mse(student, got[name], mask)
        errors.append(abs(float(approx - exact)) / float(exact))
    return max(errors)


def mlm_rows(out: Path, source: Path, teacher: Path, ks: list[int], steps: int) -> list[dict]:
    """Table 1: full-vocabulary KD against top-k targets read from a cache labelled at each k."""
    from transformers import AutoModelForMaskedLM

    from distill.students.bert_from_teacher import BertFromTeacher
    from distill.train.loop import build_context

    caches = {k: label(source, out / f"mlm-k{k}", "general/distilbert", {"teacher": str(teacher), "features": ["topk"],
                                                                        "hidden_layers": None, "topk": k}) for k in ks}
    first = load(caches[ks[0]][0])
    model = AutoModelForMaskedLM.from_pretrained(teacher).eval()
    options = recipe("distilbert_general", {"student.num_layers": 3}).student_options()  # 3 spread teacher layers
    student = BertFromTeacher.build(options, build_context(first, teacher))
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5)
    rows_per_batch, batches = 32, max(2, steps // 2)
    uids = first.table.column("uid").to_pylist()[: rows_per_batch * batches]

    opened = {cache_dir: load(cache_dir) for cache_dir, _ in caches.values()}

    def targets(cache_dir: Path, start: int) -> TeacherBatch:
        cache = opened[cache_dir]
        return TeacherBatch(cache.batch(rows_by_uid(cache, uids[start : start + rows_per_batch])),
                            cache.dims.num_layers, topk_temperature=2.0)

    def full_logits(batch: TeacherBatch) -> torch.Tensor:
        t = batch.tensors
        with torch.no_grad():
            logits = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"],
                           token_type_ids=t.get("token_type_ids")).logits
        return at_masked(logits, t["mlm_positions"]).half().float()  # as a float16 cache would hold them

    def step(batch: TeacherBatch, loss_fn) -> tuple[float, torch.Tensor, float]:
        started = time.perf_counter()
        output = student(batch.tensors)
        logits = output.mlm_logits
        logits.retain_grad()
        loss = loss_fn(logits)
        loss.backward()
        grad = logits.grad.detach().clone()
        optimizer.zero_grad(set_to_none=True)  # measured, not applied: every row sees the same student
        return loss.item(), grad, time.perf_counter() - started

    student.eval()  # no dropout: every target sees the same student function
    reference = []
    for b in range(batches):
        batch = targets(caches[ks[0]][0], b * rows_per_batch)
        teacher_logits = full_logits(batch)
        reference.append(step(batch, lambda z, t=teacher_logits: full_kl(z, t, 2.0)))
    positions = float(first.table.column("mlm_positions").combine_chunks().value_lengths().to_numpy().mean())
    full_bytes = positions * first.dims.vocab_size * 2
    rows = [{"target": f"full vocabulary logits ({first.dims.vocab_size}), float16 — computed, not stored",
             "bytes": full_bytes, "error": "0 (baseline)", "cosine": 1.0, "mass": 1.0,
             "step": float(np.mean([r[2] for r in reference]))}]
    for k in ks:
        measured = []
        for b in range(batches):
            batch = targets(caches[k][0], b * rows_per_batch)
            t = batch.tensors
            real = batch.masked_positions
            measured.append(step(batch, lambda z: topk_kl(z, t["topk_indices"][real], t["topk_logits"][real],
                                                          t["topk_logsumexp"][real], 2.0, "bucket")))
        errors = [abs(m[0] - r[0]) / r[0] for m, r in zip(measured, reference)]
        cache = opened[caches[k][0]]
        sample = cache.batch(list(range(min(len(cache), 256))))
        real = sample["mlm_positions"] >= 0
        mass = torch.exp(sample["topk_logits"][real] / 2.0 - sample["topk_logsumexp"][real][:, None]).sum(-1)
        cosines = [float(torch.nn.functional.cosine_similarity(m[1].flatten(), r[1].flatten(), dim=0))
                   for m, r in zip(measured, reference)]
        rows.append({"target": f"top-{k} (uint16 indices, float16 values, float32 normaliser)",
                     "bytes": sum(cache.manifest["totals"]["column_bytes_per_example"][c]
                                  for c in ("topk_indices", "topk_logits", "topk_logsumexp")),
                     "error": f"{100 * float(np.mean(errors)):.1f} %", "cosine": float(np.mean(cosines)),
                     "mass": float(mass.mean()),
                     "step": float(np.mean([m[2] for m in measured]))})
    return rows


def attention_rows(out: Path, name: str, source: Path, teacher: Path, steps: int, rows: int) -> list[dict]:
    """Tables 2 and 3 on one input: stored vs recomputed attention, float16 vs int8 hidden states."""
    layers = [1, 2, 3, 4]  # the teacher layers a 4-layer student maps to under TinyBERT's uniform map of 6
    common = {"teacher": str(teacher), "hidden_layers": layers, "attention_layers": layers}
    stored = label(source, out / f"{name}-stored", "general/tinybert", {**common, "attention": "stored"})
    recompute = label(source, out / f"{name}-recompute", "general/tinybert", common)
    int8 = label(source, out / f"{name}-int8", "general/tinybert", {**common, "quantize_hidden": True})
    base_step = step_seconds(stored[0], out / "runs" / f"{name}-stored", steps)
    return [
        {"input": name, "target": "stored scores, float16 hidden (baseline)", "bytes": stored[1], "error": "0",
         "step": base_step, "ratio": 1.0},
        {"input": name, "target": "attention: recompute, float16 hidden", "bytes": recompute[1],
         "error": f"scores {attention_error(stored[0], recompute[0], rows, layers):.1e}",
         "step": (s := step_seconds(recompute[0], out / "runs" / f"{name}-recompute", steps)), "ratio": s / base_step},
        {"input": name, "target": "attention: recompute, int8 hidden", "bytes": int8[1],
         "error": f"scores {attention_error(stored[0], int8[0], rows, layers):.1e}, hidden loss "
                  f"{hidden_error(stored[0], int8[0], rows, [0, *layers]):.1e}",
         "step": (s := step_seconds(int8[0], out / "runs" / f"{name}-int8", steps)), "ratio": s / base_step},
    ]


def tables(mlm: list[dict], attention: list[dict]) -> str:
    lines = [machine_line(), "", "Masked-LM targets per example (128-token WikiText-2 pairs, 15 % masked), KD at "
             "T = 2:", "", "| target | bytes / example | teacher mass in the k (T = 2) | KD loss error vs full | "
             "gradient cosine | step s | step ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['target']} | {r['bytes']:,.0f} | {100 * r['mass']:.1f} % | {r['error']} | {r['cosine']:.3f} | "
              f"{r['step']:.3f} | {r['step'] / mlm[0]['step']:.2f} |" for r in mlm]
    lines += ["", "Attention and hidden states (TinyBERT targets of teacher layers 1-4 + embeddings; 4×312 student):",
              "", "| input | targets | bytes / example | error | step s | step ratio |", "|---|---|---:|---|---:|---:|"]
    lines += [f"| {r['input']} | {r['target']} | {r['bytes']:,.0f} | {r['error']} | {r['step']:.3f} | "
              f"{r['ratio']:.2f} |" for r in attention]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="work directory (default: a temporary one)")
    parser.add_argument("--sst2", default=str(SST2_TRAIN))
    parser.add_argument("--teacher", help="classifier teacher for the SST-2 rows (default: out/sst2/teacher of "
                                          "bench/experiments/quality.py if present, else MiniLM-L6 with a random head)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--head-steps", type=int, default=1500, help="training steps of the proxy masked LM's head")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    documents, sentences, steps = (60, 400, 4) if args.quick else (300, 2000, 12)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-general-"))
    out.mkdir(parents=True, exist_ok=True)
    import augment
    import ray

    start_ray(2)
    encoder = minilm()
    wiki = corpus_dir(out, documents, encoder)
    classifier = Path(args.teacher) if args.teacher else REPO / "out" / "sst2" / "teacher"
    if not (classifier / "config.json").exists():
        classifier = minilm_classifier(out)
    config = augmentation("tang", {"columns": SENTENCE_LABEL, **ORIGINALS_ONLY})
    sst2 = augment.run(sst2_head(out, sentences, Path(args.sst2)), out / "sst2-augmented", config).output_dir
    mlm = mlm_rows(out, wiki, mlm_teacher(out / "minilm-mlm", args.head_steps), [8, 32, 128], steps)
    attention = attention_rows(out, f"WikiText-2, 128-token pairs ({documents} paragraphs)", wiki, encoder, steps, 32)
    attention += attention_rows(out, f"SST-2 first {sentences} sentences", sst2, classifier, steps, 64)
    ray.shutdown()
    text = tables(mlm, attention)
    print(text)
    (out / "general.md").write_text(text + "\n")
    (out / "general.json").write_text(json.dumps({"mlm": mlm, "attention": attention}, indent=2, default=str))
    print(f"\n(work directory {out})")


if __name__ == "__main__":
    run_timed(main)
