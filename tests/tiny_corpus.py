"""A tiny pretraining corpus and a tokenizer that is the same on every run."""
from __future__ import annotations

import re

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from selfsup.pretrain.tokenizer import SPECIAL_TOKENS

# Six short "documents" of repeated facts about (attribute, thing, value).
FACTS = [("colour", "sky", "blue"), ("sound", "bell", "loud"), ("taste", "lemon", "sour"),
         ("shape", "ball", "round"), ("size", "ant", "small"), ("speed", "hare", "fast")]
CORPUS = "\n\n".join(
    "\n".join([f"The {a} of the {b} is {c}.", f"Everyone knows the {b} is {c}.", f"A {c} {b} is common.",
               f"Ask anyone about the {a} of the {b}."])
    for a, b, c in FACTS)


def word_level_tokenizer(text: str) -> PreTrainedTokenizerFast:
    """BERT-style tokenizer whose vocabulary is every word of ``text``, numbered in sorted
    order: unlike a trained WordPiece vocabulary (tokenizers breaks merge ties in hash
    order), the same on every run, so the fixture's training run is reproducible."""
    words = sorted(set(re.findall(r"\w+|[^\w\s]", text.lower())))
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(SPECIAL_TOKENS + words)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
