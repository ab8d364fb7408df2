"""Token classification over long sentences: windows in, one prediction per word out.

Words are tokenised, cut into windows of ``max_seq_length`` tokens overlapping by
``stride`` tokens, and each word is predicted from the window where it has the most
context on both sides, so no word past ``max_seq_length`` is dropped from prediction or
scoring.
"""
from __future__ import annotations

import numpy as np


def prepare_features(examples: dict, tokenizer, labels: tuple[str, ...], max_seq_length: int, stride: int,
                     label_all_tokens: bool, indices: list[int] | None = None) -> dict:
    """Batched ``datasets.map`` function (``with_indices=True``). Each window: ``labels`` (the
    word's tag on its first sub-token; on all of them with ``label_all_tokens``, B- turned
    into I- after the first), ``word_ids`` and ``example_idx`` for merging predictions back to
    words. ``indices``: the batch's positions in the whole dataset; the tokenizer's
    overflow mapping counts from 0 in every map batch (of 1000), so without them windows
    of later batches would be merged into the first batch's examples."""
    b_to_i = [labels.index("I-" + tag[2:]) if tag.startswith("B-") and "I-" + tag[2:] in labels else k
              for k, tag in enumerate(labels)]
    enc = tokenizer(examples["tokens"], is_split_into_words=True, truncation=True, max_length=max_seq_length,
                    stride=stride, return_overflowing_tokens=True)
    sample_map = enc.pop("overflow_to_sample_mapping")
    enc["labels"], enc["word_ids"], enc["example_idx"] = [], [], []
    for i in range(len(enc["input_ids"])):
        tags = examples["tags"][sample_map[i]]
        words = enc.word_ids(i)
        row, previous = [], None
        for w in words:
            if w is None:
                row.append(-100)
            elif w != previous:
                row.append(tags[w])
            else:
                row.append(b_to_i[tags[w]] if label_all_tokens else -100)
            previous = w
        enc["labels"].append(row)
        enc["word_ids"].append([-1 if w is None else w for w in words])
        enc["example_idx"].append(sample_map[i] if indices is None else indices[sample_map[i]])
    return enc


def merge_predictions(features, logits: np.ndarray, num_words: list[int]) -> list[list[int]]:
    """Per-word label ids for every example. ``logits``: (num_features, seq, num_labels)
    aligned with ``features``; a word takes the prediction of its first sub-token in the
    window where that sub-token is farthest from both window edges."""
    best: list[list[tuple[int, int]]] = [[(-1, -1)] * n for n in num_words]  # (context, label) per word
    for f, (example, word_ids) in enumerate(zip(features["example_idx"], features["word_ids"])):
        positions = [k for k, w in enumerate(word_ids) if w >= 0]
        first_pos, last_pos = positions[0], positions[-1]
        seen = set()
        for k in positions:
            w = word_ids[k]
            if w in seen:
                continue
            seen.add(w)
            context = min(k - first_pos, last_pos - k)
            if context > best[example][w][0]:
                best[example][w] = (context, int(np.argmax(logits[f][k])))
    missing = [(e, w) for e, words in enumerate(best) for w, (c, _) in enumerate(words) if c < 0]
    if missing:
        raise RuntimeError(f"{len(missing)} words were in no window, e.g. example {missing[0][0]} word "
                           f"{missing[0][1]} (is stride too large?)")
    return [[label for _, label in words] for words in best]
