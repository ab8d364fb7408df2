"""``pipeline("selfsup-text2text", model=folder)``: text in, generated text out, for
``selfsup-seq2seq`` folders, copy models included.

Transformers 5 removed its ``text2text-generation``, ``summarization`` and ``translation``
pipelines (huggingface/transformers#43831), and ``pipeline()`` refuses those three names
before it consults ``PIPELINE_REGISTRY``; the registry itself still takes custom tasks, so
this one is registered under its own name when ``selfsup`` is imported. Each text goes
through ``encode_batch`` → ``model.generate()`` → ``batch_decode``: the tokenize / generate /
decode path, with the source's out-of-vocabulary words passed as extended ids and written
back as the words they were.
"""
from __future__ import annotations

from transformers import AutoModelForSeq2SeqLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from selfsup.modeling.seq2seq import SelfsupSeq2SeqForConditionalGeneration

from .tokenizer import WordTokenizer

TASK = "selfsup-text2text"


class SelfsupText2TextPipeline(Pipeline):
    """``pipe(text | [texts], max_source_length=None, **generate_kwargs)`` →
    ``[{"generated_text": ...}]`` per text; ``generate_kwargs`` as ``model.generate()`` takes them
    (``generation_config=``, ``num_beams=``, ``max_new_tokens=``, ``no_repeat_ngram_size=``...)."""

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.words = WordTokenizer.wrap(self.tokenizer)

    def _sanitize_parameters(self, max_source_length: int | None = None, **generate_kwargs):
        preprocess = {} if max_source_length is None else {"max_source_length": max_source_length}
        return preprocess, generate_kwargs, {}

    def preprocess(self, text: str, max_source_length: int | None = None) -> dict:
        inputs, oovs = self.words.encode_batch([text], max_source_length)
        if not self.model.config.use_copy:
            del inputs["source_extended_ids"]
        return {**inputs, "oovs": oovs}

    def _forward(self, model_inputs: dict, **generate_kwargs) -> dict:
        oovs = model_inputs.pop("oovs")
        return {"sequences": self.model.generate(**model_inputs, **generate_kwargs), "oovs": oovs}

    def postprocess(self, model_outputs: dict) -> list[dict[str, str]]:
        return [{"generated_text": text} for text in self.words.batch_decode(model_outputs["sequences"],
                                                                              model_outputs["oovs"])]


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=SelfsupText2TextPipeline,
                                    pt_model=(AutoModelForSeq2SeqLM, SelfsupSeq2SeqForConditionalGeneration),
                                    type="text")
