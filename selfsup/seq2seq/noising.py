"""BART's noise functions (Lewis et al., 2020, §2.2), as pure functions of token ids and an
explicit ``numpy.random.Generator``.

The encoder reads the noised text; the decoder writes the original. Each function
takes and returns plain lists of ids (no special tokens: the caller adds ``[EOS]``).
fairseq's ``denoising_dataset.py`` is the reference behaviour, with these choices:

* **token masking**: ``ceil(rate · n)`` positions, drawn without replacement, become
  ``[MASK]`` (fairseq ``--mask-length subword --replace-length -1``);
* **token deletion**: ``ceil(rate · n)`` positions, drawn without replacement, are
  removed (``--replace-length 0``);
* **text infilling**: span lengths drawn from Poisson(λ) until they cover
  ``ceil(rate · n)`` tokens (the last span trimmed to the budget); each span becomes ONE
  ``[MASK]``, and a zero-length span is a ``[MASK]`` inserted between two tokens
  (``--mask-length span-poisson --replace-length 1``). Unlike fairseq, spans never
  overlap (they are laid out in a random order among the unmasked tokens), so exactly
  the budget is masked; fairseq's overlapping spans mask slightly less than the rate.
  Spans are contiguous, so the first and last few tokens are masked less often than
  the rate and the interior slightly more;
* **sentence permutation**: ``ceil(rate · sentences)`` sentences, drawn at random, are
  shuffled among their own places (rate 1: the whole document is shuffled);
* **document rotation**: with probability ``rate`` the document is rotated to begin at
  a token drawn uniformly (the identity among the rotations, as in fairseq).

:func:`apply_noise` composes them in fairseq's order: permutation, masking, deletion,
infilling, rotation.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from selfsup.errors import InputError


def _budget(n: int, rate: float) -> int:
    return min(n, math.ceil(n * rate))


def token_masking(tokens: Sequence[int], rate: float, mask_id: int, rng: np.random.Generator) -> list[int]:
    """``tokens`` with ``ceil(rate · len)`` positions replaced by ``mask_id``."""
    out = list(tokens)
    for i in rng.permutation(len(out))[:_budget(len(out), rate)]:
        out[i] = mask_id
    return out


def token_deletion(tokens: Sequence[int], rate: float, rng: np.random.Generator) -> list[int]:
    """``tokens`` without ``ceil(rate · len)`` positions drawn at random."""
    drop = set(rng.permutation(len(tokens))[:_budget(len(tokens), rate)].tolist())
    return [t for i, t in enumerate(tokens) if i not in drop]


def infilling_spans(n: int, rate: float, rng: np.random.Generator, poisson_lambda: float = 3.0
                    ) -> list[tuple[int, int]]:
    """The spans text infilling masks in a sequence of ``n`` tokens: (start, length) pairs in
    order of position, non-overlapping, lengths summing to ``ceil(rate · n)``; a length of 0
    is an inserted mask before ``start``. Lengths are Poisson(``poisson_lambda``) draws, the
    last one trimmed to the budget."""
    budget = _budget(n, rate)
    if budget == 0:
        return []
    lengths, total = [], 0
    while total < budget:
        length = int(rng.poisson(poisson_lambda))
        lengths.append(min(length, budget - total))
        total += lengths[-1]
    # A uniformly random interleaving of the spans (in draw order) with the n - budget kept
    # tokens: True = the next span, False = the next kept token.
    order = np.zeros(len(lengths) + n - budget, dtype=bool)
    order[rng.choice(len(order), size=len(lengths), replace=False)] = True
    spans, position, k = [], 0, 0
    for is_span in order:
        if is_span:
            spans.append((position, lengths[k]))
            position += lengths[k]
            k += 1
        else:
            position += 1
    return spans


def text_infilling(tokens: Sequence[int], rate: float, mask_id: int, rng: np.random.Generator,
                   poisson_lambda: float = 3.0) -> list[int]:
    """``tokens`` with each span of :func:`infilling_spans` replaced by one ``mask_id``."""
    out, position = [], 0
    for start, length in infilling_spans(len(tokens), rate, rng, poisson_lambda):
        out.extend(tokens[position:start])
        out.append(mask_id)
        position = start + length
    out.extend(tokens[position:])
    return out


def sentence_permutation(sentences: Sequence[Sequence[int]], rate: float, rng: np.random.Generator
                         ) -> list[list[int]]:
    """``sentences`` with ``ceil(rate · count)`` of them, drawn at random, shuffled among
    their own places (fairseq's ``permute_sentences``)."""
    chosen = rng.permutation(len(sentences))[:_budget(len(sentences), rate)]
    order = np.arange(len(sentences))
    order[chosen] = chosen[rng.permutation(len(chosen))]
    return [list(sentences[i]) for i in order]


def document_rotation(tokens: Sequence[int], rng: np.random.Generator) -> list[int]:
    """``tokens`` rotated to begin at a position drawn uniformly (0 = unchanged)."""
    if not tokens:
        return []
    k = int(rng.integers(len(tokens)))
    return list(tokens[k:]) + list(tokens[:k])


@dataclass
class NoiseConfig:
    """Which of BART's noises are on, each with its rate (0 = off). Default: BART's choice
    for its final models, text infilling of 30% of the tokens plus sentence permutation of
    every sentence (Lewis et al., 2020, §5.1)."""

    token_masking: float = 0.0  # fraction of tokens replaced by [MASK]
    token_deletion: float = 0.0  # fraction of tokens removed
    text_infilling: float = 0.3  # fraction of tokens inside masked spans
    sentence_permutation: float = 1.0  # fraction of sentences shuffled
    document_rotation: float = 0.0  # probability that a document is rotated
    poisson_lambda: float = 3.0  # mean span length of text infilling (BART: 3)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "poisson_lambda":
                if not value > 0:
                    raise InputError(f"must be > 0, got {value}", field=f.name)
            elif not 0.0 <= value <= 1.0:
                raise InputError(f"a noise rate must be in [0, 1], got {value}", field=f.name)

    @classmethod
    def parse(cls, spec: str) -> "NoiseConfig":
        """``"text_infilling=0.3,sentence_permutation=1"`` → a config with those noises on
        and every other one off (``poisson_lambda`` keeps its default unless given)."""
        names = [f.name for f in fields(cls)]
        values = {n: 0.0 for n in names if n != "poisson_lambda"}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, sep, rate = (part.strip() for part in item.partition("="))
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                raise InputError(f"unknown noise {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                                 + f" (known: {', '.join(names)})", field="noise")
            try:
                values[name] = float(rate) if sep else 1.0
            except ValueError:
                raise InputError(f"{item!r}: the rate of {name} is not a number", field="noise") from None
        return cls(**values)

    def describe(self) -> str:
        """The inverse of :meth:`parse`: the noises that are on, with their rates."""
        on = [f"{f.name}={getattr(self, f.name):g}" for f in fields(self)
              if f.name != "poisson_lambda" and getattr(self, f.name) > 0]
        if self.text_infilling > 0:
            on.append(f"poisson_lambda={self.poisson_lambda:g}")
        return ",".join(on)


def apply_noise(sentences: Sequence[Sequence[int]], config: NoiseConfig, mask_id: int,
                rng: np.random.Generator) -> list[int]:
    """The encoder's input for a document given as sentences of token ids; the decoder's
    target is the sentences joined, untouched. Order: permutation, masking, deletion,
    infilling, rotation (fairseq's)."""
    if config.sentence_permutation > 0:
        sentences = sentence_permutation(sentences, config.sentence_permutation, rng)
    tokens = [t for s in sentences for t in s]
    if config.token_masking > 0:
        tokens = token_masking(tokens, config.token_masking, mask_id, rng)
    if config.token_deletion > 0:
        tokens = token_deletion(tokens, config.token_deletion, rng)
    if config.text_infilling > 0:
        tokens = text_infilling(tokens, config.text_infilling, mask_id, rng, config.poisson_lambda)
    if config.document_rotation > 0 and rng.random() < config.document_rotation:
        tokens = document_rotation(tokens, rng)
    return tokens
