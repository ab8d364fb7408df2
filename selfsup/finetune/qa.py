"""Extractive QA over long contexts: overlapping windows in, answers in the original text out.

Each (question, context) becomes windows of ``max_seq_length`` tokens that overlap by
``doc_stride`` tokens, so every context token is in at least one window. Predictions are
the n-best start/end pairs over all windows of an example, mapped back to the context
through the tokenizer's character offsets.
"""
from __future__ import annotations

import collections

import numpy as np

from ..errors import InputError


def validate_windows(max_seq_length: int, doc_stride: int, max_query_length: int) -> None:
    """A window must hold the question, 3 special tokens and more context than the overlap."""
    room = max_seq_length - max_query_length - 3
    if not 0 <= doc_stride < room:
        raise InputError(f"doc_stride {doc_stride} must be >= 0 and < max_seq_length - max_query_length - 3 = "
                         f"{room}, or windows could not advance through the context", field="doc_stride")


def _truncate_question(tokenizer, question: str, max_query_length: int) -> str:
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_query_length:
        return question
    return question[: enc["offset_mapping"][max_query_length - 1][1]]


def prepare_features(examples: dict, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int,
                     train: bool) -> dict:
    """Batched ``datasets.map`` function: examples → windows. Training windows get
    ``start_positions``/``end_positions`` (0 = [CLS] when the answer is not inside);
    evaluation windows keep ``example_id`` and ``offset_mapping`` (None outside the context)."""
    pad_right = tokenizer.padding_side == "right"
    questions = [_truncate_question(tokenizer, q.lstrip(), max_query_length) for q in examples["question"]]
    enc = tokenizer(questions if pad_right else examples["context"], examples["context"] if pad_right else questions,
                    truncation="only_second" if pad_right else "only_first", max_length=max_seq_length,
                    stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    sample_map = enc.pop("overflow_to_sample_mapping")
    context_index = 1 if pad_right else 0
    enc["example_id"], starts, ends = [], [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        sequence_ids = enc.sequence_ids(i)
        example = sample_map[i]
        enc["example_id"].append(examples["id"][example])
        if train:
            answers = examples["answers"][example]
            ids = enc["input_ids"][i]
            cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
            if not answers["answer_start"]:
                starts.append(cls), ends.append(cls)
            else:
                start_char = answers["answer_start"][0]
                end_char = start_char + len(answers["text"][0])
                first = sequence_ids.index(context_index)
                last = len(sequence_ids) - 1 - sequence_ids[::-1].index(context_index)
                if offsets[first][0] > start_char or offsets[last][1] < end_char:
                    starts.append(cls), ends.append(cls)  # the answer is not (fully) in this window
                else:
                    s = first
                    while s <= last and offsets[s][0] <= start_char:
                        s += 1
                    e = last
                    while e >= first and offsets[e][1] >= end_char:
                        e -= 1
                    starts.append(s - 1), ends.append(e + 1)
        enc["offset_mapping"][i] = [o if sequence_ids[k] == context_index else None for k, o in enumerate(offsets)]
    if train:
        enc["start_positions"], enc["end_positions"] = starts, ends
        enc.pop("offset_mapping")
        enc.pop("example_id")
    return enc


def postprocess(examples, features, start_logits: np.ndarray, end_logits: np.ndarray, n_best_size: int = 20,
                max_answer_length: int = 30, version_2_with_negative: bool = False,
                null_score_diff_threshold: float = 0.0) -> dict[str, str]:
    """Best answer text per example id. ``start_logits``/``end_logits``: (num_features, seq),
    aligned with ``features`` rows."""
    by_example = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        by_example[example_id].append(i)
    predictions = {}
    offsets_all = features["offset_mapping"]
    for example in examples:
        best_text, best_score, null_score = "", -np.inf, np.inf
        for i in by_example[example["id"]]:
            start, end, offsets = start_logits[i], end_logits[i], offsets_all[i]
            null_score = min(null_score, start[0] + end[0])
            for s in np.argsort(start)[-1:-n_best_size - 1:-1]:
                if s >= len(offsets) or offsets[s] is None:
                    continue
                for e in np.argsort(end)[-1:-n_best_size - 1:-1]:
                    if e >= len(offsets) or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = start[s] + end[e]
                    if score > best_score:
                        best_score = score
                        best_text = example["context"][offsets[s][0]:offsets[e][1]]
        if version_2_with_negative and null_score - best_score > null_score_diff_threshold:
            best_text = ""
        predictions[example["id"]] = best_text
    return predictions
