"""mlm — TinyBERT (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language
Understanding", §3.2 and Algorithm 1): for a word that is a single wordpiece, mask it and
take the top-K (K = 15) masked-LM predictions of BERT as replacement candidates.

As in TinyBERT's reference release, the query is `[CLS] masked sentence [SEP] original
sentence [SEP]`, so the prediction sees the original word, and candidates starting with
`##` are dropped (here: anything that is not an alphabetic word: pieces, [unused*],
punctuation, special tokens, masked out before top-K). Unlike the reference (one forward per word at batch size 1), every
masked copy of every word of a shard goes through the model in length-sorted batches,
and the LM head runs only at the masked positions, not over every token. Special tokens
and the word itself are dropped as well (replacing a word by itself would silently lower
the effective replacement probability p_t).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from augment.rules.registry import register_rule
from augment.words import Words, detokenize
from distill.storage.fingerprint import model_fingerprint
from distill.common.hardware import cpu_has_native_bf16
from distill.common.models import resolve_model_dir
from distill.common.config_io import Device, NonEmptyStr, PositiveInt

log = logging.getLogger(__name__)


def match_case(candidate: str, original: str) -> str:
    """Title-case the candidate when the original word was (candidates come lower-cased)."""
    return candidate.title() if original[:1].isupper() and original[1:].islower() else candidate


@register_rule("mlm")
@dataclass
class MlmRule:
    family: ClassVar[str] = "tinybert"
    model: NonEmptyStr = "bert-base-uncased"  # any masked-LM: hub name (online) or local directory
    top_k: PositiveInt = 15  # K, TinyBERT reference release (M = 15)
    batch_size: PositiveInt = 128  # masked queries per forward pass
    max_length: PositiveInt = 512  # query length cap (masked + original sentence)
    device: Device = "auto"  # auto = cuda if available
    # auto = bfloat16 autocast on GPUs and on CPUs with native bf16 (AVX512-BF16/AMX): ~2x the
    # fp32 speed; candidates are a top-K over 30k logits, insensitive to bf16 rounding except at
    # near-ties. Pin float32 for bit-identical output across different machines.
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    forward_calls: int = field(default=0, repr=False, compare=False)

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if getattr(self, "_model", None) is not None:
            return
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._torch = torch
        self._device = torch.device(device)
        self._autocast = self.resolved_dtype(device) == "bfloat16"
        path = resolve_model_dir(self.model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=False)
        self._model = model.to(self._device).eval()
        # Run the LM head only where it is needed: BERT's `cls`, RoBERTa's `lm_head`.
        self._head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
        self._encoder = model.base_model if self._head is not None else None
        special = set(self.tokenizer.all_special_tokens)
        vocab = [""] * model.get_output_embeddings().weight.shape[0]  # ids past the tokenizer stay blocked
        for token, token_id in self.tokenizer.get_vocab().items():
            if token_id < len(vocab):
                vocab[token_id] = token
        # Only whole alphabetic words may replace a word: drops "##" pieces, [unused*], punctuation.
        blocked = [not tok.isalpha() or tok in special for tok in vocab]
        self._blocked = torch.tensor(blocked, device=self._device)
        self._vocab = vocab

    def is_single_piece(self, word: str) -> bool:
        return len(self.tokenizer.tokenize(word)) == 1

    def _predict(self, input_ids: list[list[int]], type_ids: list[list[int]], positions: list[int]):
        torch = self._torch
        width = max(len(ids) for ids in input_ids)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(input_ids), width), pad, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for row, (seq, seg) in enumerate(zip(input_ids, type_ids)):
            ids[row, : len(seq)] = torch.tensor(seq)
            types[row, : len(seg)] = torch.tensor(seg)
            mask[row, : len(seq)] = 1
        ids, types, mask = ids.to(self._device), types.to(self._device), mask.to(self._device)
        rows = torch.arange(len(input_ids), device=self._device)
        where = torch.tensor(positions, device=self._device)
        self.forward_calls += 1
        with torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self._autocast):
            return self._top_ids(ids, types, mask, rows, where)

    def _top_ids(self, ids, types, mask, rows, where) -> list[list[int]]:
        torch = self._torch
        if self._head is not None:
            hidden = self._encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            logits = self._head(hidden[rows, where])
        else:
            logits = self._model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[rows, where]
        logits = logits.float().masked_fill(self._blocked, float("-inf"))
        # One spare: the word itself is dropped from its own candidates.
        return torch.topk(logits, k=min(self.top_k + 1, logits.shape[-1]), dim=-1).indices.cpu().tolist()

    def candidates(self, queries: list[tuple[Words, int]]) -> list[list[str]]:
        """Top-K candidates for word `i` of each `(words, i)`, in large length-sorted batches."""
        if not queries:
            return []
        tok = self.tokenizer
        masked_texts, original_texts = [], []
        for words, index in queries:
            tokens = list(words.tokens)
            tokens[index] = tok.mask_token
            masked_texts.append(detokenize(tokens, words.spaces))
            original_texts.append(words.text())
        encoded = tok(masked_texts, original_texts, truncation=True, max_length=self.max_length)
        type_ids = encoded.get("token_type_ids") or [[0] * len(ids) for ids in encoded["input_ids"]]
        positions = []
        for ids, types in zip(encoded["input_ids"], type_ids):
            pos = next((i for i, (t, s) in enumerate(zip(ids, types)) if t == tok.mask_token_id and s == 0), None)
            positions.append(pos)
        order = sorted((i for i, p in enumerate(positions) if p is not None), key=lambda i: len(encoded["input_ids"][i]))
        results: list[list[str]] = [[] for _ in queries]
        with self._torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                top = self._predict(
                    [encoded["input_ids"][i] for i in chunk], [type_ids[i] for i in chunk], [positions[i] for i in chunk]
                )
                for i, ids in zip(chunk, top):
                    original = queries[i][0].tokens[queries[i][1]]
                    results[i] = self._filter(ids, original)
        return results

    def _filter(self, ids: list[int], original: str) -> list[str]:
        kept = []
        for token_id in ids:
            word = self._vocab[token_id]
            if word == original.lower():
                continue
            kept.append(match_case(word, original))
            if len(kept) == self.top_k:
                break
        return kept

    def resolved_dtype(self, device: str | None = None) -> str:
        import torch

        if self.dtype != "auto":
            if self.dtype not in ("float32", "bfloat16"):
                raise ValueError(f"mlm dtype must be auto, float32 or bfloat16, not {self.dtype!r}")
            return self.dtype
        device = device or ("cuda" if torch.cuda.is_available() and self.device in ("auto", "cuda") else "cpu")
        if device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
        return "bfloat16" if cpu_has_native_bf16() else "float32"

    def identity(self) -> dict[str, Any]:
        model_dir = resolve_model_dir(self.model)
        return {"model": self.model, "fingerprint": model_fingerprint(model_dir), "dtype": self.resolved_dtype()}
