"""mlm — TinyBERT (Jiao et al. 2020, §3.2, Algorithm 1): a word that is a single wordpiece is masked and
BERT's top-K (K = 15) predictions become its candidates, alphabetic whole words other than itself. The
query is the reference's `[CLS] masked sentence [SEP] original sentence [SEP]`; where we differ (several
masks per query, token-budget batches, bf16/int8): docs/augment.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from augment.rules.registry import register_rule
from augment.words import Words, detokenize
from distill.common.batching import encoder_inputs, length_buckets
from distill.common.config_io import Device, NonEmptyStr, PositiveInt
from distill.common.hardware import cpu_has_native_bf16, worker_device
from distill.common.models import resolve_model_dir
from distill.storage.fingerprint import model_fingerprint

CPU_BATCH_TOKENS = 2048  # max_batch_tokens default on CPU: GEMMs are efficient well below this
GPU_BATCH_TOKENS = 16384
Query = tuple[Words, int]  # (one side of an example, index of the word to mask)


def match_case(candidate: str, original: str) -> str:
    """Title-case the candidate when the original word was (candidates come lower-cased)."""
    return candidate.title() if original[:1].isupper() and original[1:].islower() else candidate


def mask_groups(n: int, masks_per_query: int | str) -> list[list[int]]:
    """Split n words into ceil(n/k) groups masked together, strided so masks sit far apart."""
    if n == 0:
        return []
    per_query = n if masks_per_query == "all" else int(masks_per_query)
    queries = math.ceil(n / per_query)
    return [list(range(first, n, queries)) for first in range(queries)]


@dataclass
class _Sequence:
    """One model input: a side with several of its words masked, and which queries they answer."""

    words: Words
    word_indices: list[int]  # masked words, ascending
    answers: list[list[int]]  # for each masked word: the positions in `queries` it answers


@register_rule("mlm")
@dataclass
class MlmRule:
    model: NonEmptyStr = "bert-base-uncased"  # any masked-LM: hub name (online) or local directory
    top_k: PositiveInt = 15  # K, TinyBERT reference release (M = 15)
    masks_per_query: PositiveInt | Literal["all"] = "all"  # words masked in one query; 1 = the reference
    batch_size: PositiveInt = 128  # query sequences per forward pass, at most
    max_batch_tokens: PositiveInt | None = None  # padded query tokens per forward; None: 2048 on CPU, 16384 on GPU
    max_length: PositiveInt = 512  # query length cap (masked + original sentence)
    device: Device = "auto"  # auto = the GPU Ray assigned this worker, else cpu (outside Ray: cuda if available)
    # auto: bf16 where the hardware has it natively; int8: dynamic int8 encoder (CPU); float32: bit-identical
    dtype: Literal["auto", "float32", "bfloat16", "int8"] = "auto"
    forward_calls: int = field(default=0, repr=False, compare=False)
    sequences: int = field(default=0, repr=False, compare=False)  # query sequences encoded

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if getattr(self, "_model", None) is not None:
            return
        self._torch = torch
        self._device = torch.device(worker_device(self.device))
        self._dtype = self.resolved_dtype(self._device.type)
        if self._dtype == "int8" and self._device.type != "cpu":
            raise ValueError(f"rules.mlm.dtype int8 runs on CPU only, not on {self._device}")
        self._autocast = self._dtype == "bfloat16"
        path = resolve_model_dir(self.model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=False)
        vocab_size = model.get_output_embeddings().weight.shape[0]
        model = model.to(self._device).eval()
        if self._dtype == "int8":
            # the encoder only: int8 rounding would reorder the LM head's top-K (which runs at the masks alone)
            setattr(model, model.base_model_prefix, _quantize_linear_int8(model.base_model))
        self._model = model
        # Run the LM head only where it is needed: BERT's `cls`, RoBERTa's `lm_head`.
        self._head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
        self._encoder = model.base_model if self._head is not None else None
        special = set(self.tokenizer.all_special_tokens)
        vocab = [""] * vocab_size  # ids past the tokenizer stay blocked
        for token, token_id in self.tokenizer.get_vocab().items():
            if token_id < len(vocab):
                vocab[token_id] = token
        # Only whole alphabetic words may replace a word: drops "##" pieces, [unused*], punctuation.
        blocked = [not tok.isalpha() or tok in special for tok in vocab]
        self._blocked = torch.tensor(blocked, device=self._device)
        self._vocab = vocab

    def runtime(self) -> dict[str, str]:
        """Where and how this worker runs the model (recorded per shard)."""
        return {"device": str(self._device), "dtype": self._dtype}

    def is_single_piece(self, word: str) -> bool:
        return len(self.tokenizer.tokenize(word)) == 1

    def _sequences(self, queries: list[Query]) -> list[_Sequence]:
        """Group the queries by side (same `Words` object) and cut each side into masked groups."""
        by_side: dict[int, tuple[Words, dict[int, list[int]]]] = {}
        for position, (words, index) in enumerate(queries):
            by_side.setdefault(id(words), (words, {}))[1].setdefault(index, []).append(position)
        sequences = []
        for words, answers in by_side.values():
            indices = sorted(answers)
            for group in mask_groups(len(indices), self.masks_per_query):
                chosen = [indices[g] for g in group]
                sequences.append(_Sequence(words, chosen, [answers[i] for i in chosen]))
        return sequences

    def candidates(self, queries: list[Query]) -> list[list[str]]:
        """Top-K candidates for word `i` of each `(words, i)`, in large length-sorted batches."""
        if not queries:
            return []
        tok = self.tokenizer
        sequences = self._sequences(queries)
        masked_texts, original_texts = [], []
        for seq in sequences:
            tokens = list(seq.words.tokens)
            for index in seq.word_indices:
                tokens[index] = tok.mask_token
            masked_texts.append(detokenize(tokens, seq.words.spaces))
            original_texts.append(seq.words.text())
        encoded = tok(masked_texts, original_texts, truncation=True, max_length=self.max_length)
        type_ids = encoded.get("token_type_ids") or [[0] * len(ids) for ids in encoded["input_ids"]]
        positions = [self._mask_positions(ids, types, len(seq.word_indices))
                     for ids, types, seq in zip(encoded["input_ids"], type_ids, sequences)]
        kept = [i for i, p in enumerate(positions) if p]
        lengths = np.array([len(encoded["input_ids"][i]) for i in kept])
        budget = self.max_batch_tokens or (GPU_BATCH_TOKENS if self._device.type == "cuda" else CPU_BATCH_TOKENS)
        results: list[list[str]] = [[] for _ in queries]
        with self._torch.inference_mode():
            for bucket in length_buckets(lengths, self.batch_size, budget):
                chunk = [kept[b] for b in bucket]
                top = iter(self._predict([encoded["input_ids"][i] for i in chunk], [type_ids[i] for i in chunk],
                                         [positions[i] for i in chunk]))
                for i in chunk:
                    seq = sequences[i]
                    for index, answers in zip(seq.word_indices[: len(positions[i])], seq.answers):
                        found = self._filter(next(top), seq.words.tokens[index])
                        for answer in answers:
                            results[answer] = found
        return results

    def _mask_positions(self, ids: list[int], types: list[int], expected: int) -> list[int]:
        """Positions of the [MASK]s in segment A, in word order. Fewer than expected when truncation
        cut the sentence (the cut words get no candidates); none when the text itself holds the mask
        token (ambiguous: that side gets no candidates rather than wrong ones)."""
        found = [i for i, (t, s) in enumerate(zip(ids, types)) if t == self.tokenizer.mask_token_id and s == 0]
        return [] if len(found) > expected else found

    def _predict(self, input_ids: list[list[int]], type_ids: list[list[int]], positions: list[list[int]]):
        torch = self._torch
        inputs = {k: v.to(self._device) for k, v in encoder_inputs(input_ids, self.tokenizer.pad_token_id,
                                                                    type_ids).items()}
        rows = torch.tensor([row for row, where in enumerate(positions) for _ in where], device=self._device)
        where = torch.tensor([p for where in positions for p in where], device=self._device)
        self.forward_calls += 1
        self.sequences += len(input_ids)
        with torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self._autocast):
            if self._head is not None:
                logits = self._head(self._encoder(**inputs).last_hidden_state[rows, where])
            else:
                logits = self._model(**inputs).logits[rows, where]
            logits = logits.float().masked_fill(self._blocked, float("-inf"))
            # One spare: the word itself is dropped from its own candidates.
            return torch.topk(logits, k=min(self.top_k + 1, logits.shape[-1]), dim=-1).indices.cpu().tolist()

    def _filter(self, ids: list[int], original: str) -> list[str]:
        words = (self._vocab[token_id] for token_id in ids)
        return [match_case(word, original) for word in words if word != original.lower()][: self.top_k]

    def resolved_dtype(self, device_type: str | None = None) -> str:
        """`auto`: bf16 autocast where the hardware has it natively (GPUs, AVX512-BF16/AMX CPUs), else float32."""
        import torch

        if self.dtype != "auto":
            return self.dtype
        if device_type is None:
            device_type = torch.device(worker_device(self.device)).type
        if device_type == "cuda":
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
        return "bfloat16" if device_type == "cpu" and cpu_has_native_bf16() else "float32"

    def identity(self) -> dict[str, Any]:
        fingerprint = model_fingerprint(resolve_model_dir(self.model))
        return {"model": self.model, "fingerprint": fingerprint, "dtype": self.resolved_dtype()}


def _quantize_linear_int8(model):
    """Dynamic int8 weights for every nn.Linear of `model` (torch.ao's CPU path), its deprecation warnings silenced."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
