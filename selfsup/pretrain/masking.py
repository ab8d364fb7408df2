"""Dynamic masked-language-model masking in the collator (a fresh mask every epoch).

``mlm_probability`` of the non-special tokens are chosen (whole words together when
``whole_word_mask``, using the word ids the fast tokenizer gave each token, so it works
for WordPiece, BPE or SentencePiece alike); of those 80% become ``[MASK]``, 10% a random
token, 10% stay. Labels are the original ids at chosen positions and -100 elsewhere.

When the collator has a ``seed`` and the rows carry their dataset ``index``, each row's
draws come from a generator seeded by (seed, epoch, index): a row gets a fresh mask every
epoch, and the same one whatever the batch it lands in, the process that reads it or the
point a run was resumed from. The training loop tells the collator the epoch
(``set_epoch``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class MaskingCollator:
    """Pads a list of instances and masks them.

    Each feature: ``input_ids``, ``token_type_ids``, ``word_ids`` (-1 = special token), and
    optionally ``next_sentence_label``. Returns tensors (batch, seq) plus ``labels`` and
    ``next_sentence_label`` (batch,) when present.
    """

    pad_token_id: int
    mask_token_id: int
    vocab_size: int
    special_token_ids: list[int] = field(default_factory=list)
    mlm_probability: float = 0.15
    max_predictions_per_seq: int | None = None  # BERT used 20 at length 128
    whole_word_mask: bool = False
    pad_to_multiple_of: int | None = 8  # tensor-core / SIMD friendly shapes
    generator: torch.Generator | None = None  # draws for rows without an index: None = the global RNG
    seed: int | None = None  # per-row masks from (seed, epoch, row index), for rows with an "index"
    epoch: int = 0

    @classmethod
    def for_tokenizer(cls, tokenizer, **kwargs) -> "MaskingCollator":
        return cls(pad_token_id=tokenizer.pad_token_id, mask_token_id=tokenizer.mask_token_id,
                   vocab_size=len(tokenizer), special_token_ids=list(tokenizer.all_special_ids), **kwargs)

    def __post_init__(self):
        allowed = torch.ones(self.vocab_size, dtype=torch.bool)
        allowed[[i for i in self.special_token_ids if i < self.vocab_size]] = False
        # Random replacements are drawn from ordinary tokens only: a stray [CLS] or [SEP]
        # in the middle of a sentence would teach the model nothing useful.
        self._random_ids = allowed.nonzero().squeeze(1)
        self._special_ids = torch.tensor(sorted(set(self.special_token_ids) | {self.pad_token_id, self.mask_token_id}))

    @property
    def ordinary_ids(self) -> torch.Tensor:
        """The ids random replacements are drawn from: the vocabulary less its special tokens."""
        return self._random_ids

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.pad(features)
        seeds = None
        if self.seed is not None and "index" in features[0]:
            seeds = [row_seed(self.seed, self.epoch, f["index"]) for f in features]
        batch["input_ids"], batch["labels"] = self.mask(batch["input_ids"], batch.pop("word_ids"), seeds)
        return batch

    def pad(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """Pads the model fields of ``features`` to (batch, seq): ``input_ids`` with the pad
        id, ``labels`` with -100, ``word_ids`` with -1, ``token_type_ids`` with 0; adds
        ``attention_mask``; ``next_sentence_label`` becomes (batch,). Other columns
        (``source`` provenance, ``index``) are left out."""
        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        fill = {"input_ids": self.pad_token_id, "token_type_ids": 0, "word_ids": -1, "labels": -100}
        out = {"attention_mask": torch.zeros((len(features), length), dtype=torch.long)}
        if "next_sentence_label" in features[0]:
            out["next_sentence_label"] = torch.tensor([f["next_sentence_label"] for f in features])
        for key in fill.keys() & features[0].keys():
            out[key] = torch.full((len(features), length), fill[key], dtype=torch.long)
            for i, f in enumerate(features):
                out[key][i, :len(f[key])] = torch.as_tensor(f[key])
        for i, f in enumerate(features):
            out["attention_mask"][i, :len(f["input_ids"])] = 1
        return out

    def _draws(self, input_ids: torch.Tensor, groups: torch.Tensor, row_seeds: list[int] | None):
        """Uniform draws per group (batch, groups) and per token (batch, seq), and random
        replacement ids (batch, seq). With ``row_seeds`` each row draws only over its own
        tokens from its own generator (padding gets 1.0: never chosen), so its draws do not
        depend on the rest of the batch."""
        shape, n_groups = input_ids.shape, int(groups.max()) + 1
        if row_seeds is None:
            return (torch.rand(shape[0], n_groups, generator=self.generator),
                    torch.rand(*shape, generator=self.generator),
                    torch.randint(len(self._random_ids), shape, generator=self.generator))
        group_draw, action = torch.ones(shape[0], n_groups), torch.ones(shape)
        pick = torch.zeros(shape, dtype=torch.long)
        trailing_pad = (input_ids == self.pad_token_id).flip(1).long().cumprod(1).sum(1)
        g = torch.Generator()
        for r, seed in enumerate(row_seeds):
            g.manual_seed(seed)
            length = shape[1] - int(trailing_pad[r])
            row_groups = int(groups[r, :length].max()) + 1 if length else 0
            group_draw[r, :row_groups] = torch.rand(row_groups, generator=g)
            action[r, :length] = torch.rand(length, generator=g)
            pick[r, :length] = torch.randint(len(self._random_ids), (length,), generator=g)
        return group_draw, action, pick

    def mask(self, input_ids: torch.Tensor, word_ids: torch.Tensor,
             row_seeds: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids``, ``word_ids``: (batch, seq); word id -1 marks special/padding
        positions, which are never chosen. ``row_seeds``: one seed per row, or None to draw
        from ``generator``. Returns masked ids and labels."""
        # Special tokens are never chosen, even inside text (WikiText's literal "<unk>"
        # becomes the unk token of some tokenizers).
        candidate = (word_ids >= 0) & ~torch.isin(input_ids, self._special_ids)
        if self.whole_word_mask:
            groups = word_ids.clamp(min=0)
        else:  # every token its own group
            groups = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        # One uniform draw per group; a token is chosen when its group's draw is small.
        group_draw, action, pick = self._draws(input_ids, groups, row_seeds)
        draw = group_draw.gather(1, groups)
        chosen = candidate & (draw < self.mlm_probability)
        if self.max_predictions_per_seq is not None:
            # Keep the groups with the smallest draws while they fit in the cap (whole words stay whole).
            masked_draw = torch.where(chosen, draw, torch.full_like(draw, 2.0))
            tokens_up_to = (masked_draw.unsqueeze(1) <= masked_draw.unsqueeze(2)).logical_and(
                chosen.unsqueeze(1)).sum(-1)
            chosen &= tokens_up_to <= self.max_predictions_per_seq
        labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
        to_mask = chosen & (action < 0.8)
        to_random = chosen & (action >= 0.8) & (action < 0.9)
        masked = input_ids.masked_fill(to_mask, self.mask_token_id)
        masked = torch.where(to_random, self._random_ids[pick], masked)
        return masked, labels


def row_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of row ``index``'s mask in ``epoch``."""
    return ((seed * 1_000_003 + epoch) * 1_000_033 + index) % 2**63
