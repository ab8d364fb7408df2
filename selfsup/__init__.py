"""selfsup: self-supervised NLP on the Hugging Face stack.

Importing the package registers its model types (``selfsup-bert``, ``selfsup-gpt``,
``selfsup-seq2seq``) with transformers' Auto classes.
"""
from . import modeling  # noqa: F401  (registers the Auto classes)

__version__ = "0.1.0"
