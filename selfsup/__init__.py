"""selfsup: self-supervised NLP on the Hugging Face stack.

Importing the package registers its model types (``selfsup-bert``, ``selfsup-gpt``,
``selfsup-seq2seq``) with transformers' Auto classes, and the ``selfsup-text2text`` pipeline.
"""
from . import modeling  # noqa: F401  (registers the Auto classes)
from .seq2seq import pipeline  # noqa: F401  (registers pipeline("selfsup-text2text"))

__version__ = "0.1.0"
