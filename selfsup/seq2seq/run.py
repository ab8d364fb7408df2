"""Training and evaluation of ``selfsup-seq2seq`` on (source, target) jsonl files, on the
shared Accelerate loop. ``scripts/train_seq2seq.py`` is the command line; benches and
tests call :func:`train` directly."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from selfsup.errors import InputError
from selfsup.metrics.generation import corpus_bleu, exact_match, rouge
from selfsup.modeling.seq2seq import SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration
from selfsup.pretrain.starting_model import checkpoint_folder
from selfsup.provenance import package_versions, write_model_card
from selfsup.training import Trainer, TrainingConfig

from .data import Pair, read_pairs
from .decoding import GenerationArguments, generate
from .scheduled_sampling import ScheduledSamplingArguments, scheduled_sampling_loss
from .subword import load_or_train_tokenizer
from .tokenizer import EncodedSource, WordTokenizer
from .warm_start import WarmStartArguments, warm_started_model

logger = logging.getLogger(__name__)


@dataclass
class Seq2SeqDataArguments:
    train_file: str | None = field(default=None, metadata={"help": "jsonl with source and target columns"})
    validation_file: str | None = None
    test_file: str | None = None
    source_column: str = "src"
    target_column: str = field(default="tgt", metadata={"help": "several references: comma-separated columns "
                                                                  "(the first is trained on)"})
    eval_target_column: str | None = field(default=None, metadata={"help": "reference columns of the "
                                                                            "validation/test files if they differ"})
    test_target_column: str | None = field(default=None, metadata={"help": "reference columns of the test "
                                                                            "file (default: eval_target_column)"})
    max_source_length: int = 256
    max_target_length: int = 64
    # A cap below the train vocabulary is the point: rare words (names) stay OOV and must be copied.
    vocab_size: int = 8000
    min_frequency: int = 1
    tokenizer_type: str = field(default="word", metadata={
        "help": "word (a capped word vocabulary: rare words are OOV and copied through extended ids) or wordpiece "
                "(subword pieces trained on the train split; the copy head copies pieces)"})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "a saved tokenizer folder or a checkpoint's (e.g. a BERT WordPiece) instead of training one"})
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass
class Seq2SeqModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": "a saved folder to fine-tune "
                                                                             "(its tokenizer too); else from scratch"})
    copy: bool = field(default=False, metadata={"help": "pointer-generator copy head"})
    coverage: bool = field(default=False, metadata={"help": "coverage on the copy attention (needs --copy)"})
    coverage_loss_weight: float = 1.0
    hidden_size: int = 256
    num_hidden_layers: int = 3
    num_decoder_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512


class EncodedPairs(Dataset):
    """Pairs encoded once: source ids, extended ids, OOV list and labels."""

    def __init__(self, pairs: list[Pair], tokenizer: WordTokenizer, copy: bool, max_source_length: int,
                 max_target_length: int):
        self.items = []
        for p in pairs:
            src = encode_source(tokenizer, p, max_source_length)
            labels = tokenizer.encode_target(p.target, src.oovs if copy else None, max_target_length)
            if len(labels) == 1:  # [EOS] alone
                raise InputError("the target has no tokens once tokenized", path=p.path, line=p.line, field="target")
            self.items.append({"input_ids": src.input_ids, "source_extended_ids": src.extended_ids,
                               "labels": labels, "oovs": src.oovs})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def encode_source(tokenizer: WordTokenizer, pair: Pair, max_length: int | None) -> EncodedSource:
    """``pair``'s source encoded; one the tokenizer drops whole (only zero-width or control
    characters, which a BERT normalizer removes) is an error naming its file and line: attention
    over an empty source has nothing to read."""
    src = tokenizer.encode_source(pair.source, max_length)
    if not src.input_ids:
        raise InputError("the source has no tokens once tokenized", path=pair.path, line=pair.line, field="source")
    return src


class Collator:
    """Right-pads a list of encoded pairs: ``input_ids``/``source_extended_ids`` with
    ``[PAD]``, ``labels`` with -100; ``attention_mask`` marks real source tokens."""

    def __init__(self, pad_id: int, copy: bool):
        self.pad_id, self.copy = pad_id, copy

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        def pad(key, value):
            width = max(len(it[key]) for it in items)
            return torch.tensor([it[key] + [value] * (width - len(it[key])) for it in items])
        batch = {"input_ids": pad("input_ids", self.pad_id), "labels": pad("labels", -100)}
        batch["attention_mask"] = (batch["input_ids"] != self.pad_id).long()
        if self.copy:
            batch["source_extended_ids"] = pad("source_extended_ids", self.pad_id)
        return batch


def new_model(m: Seq2SeqModelArguments, tokenizer: WordTokenizer, max_length: int = 0
              ) -> SelfsupSeq2SeqForConditionalGeneration:
    """A randomly initialised model of the sizes in ``m`` for ``tokenizer``'s vocabulary, with
    positions for at least ``max_length`` tokens."""
    config = SelfsupSeq2SeqConfig(
        vocab_size=len(tokenizer), hidden_size=m.hidden_size, num_hidden_layers=m.num_hidden_layers,
        num_decoder_layers=m.num_decoder_layers, num_attention_heads=m.num_attention_heads,
        intermediate_size=m.intermediate_size, hidden_dropout_prob=m.hidden_dropout_prob,
        attention_probs_dropout_prob=m.attention_probs_dropout_prob,
        max_position_embeddings=max(m.max_position_embeddings, max_length),
        use_copy=m.copy, use_coverage=m.coverage, coverage_loss_weight=m.coverage_loss_weight,
        pad_token_id=tokenizer.pad_id, unk_token_id=tokenizer.unk_id, bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id, decoder_start_token_id=tokenizer.bos_id)
    return SelfsupSeq2SeqForConditionalGeneration(config)


def _columns(spec: str) -> str | list[str]:
    cols = [c.strip() for c in spec.split(",") if c.strip()]
    return cols[0] if len(cols) == 1 else cols


@torch.no_grad()
def predict(model, tokenizer: WordTokenizer, pairs: list[Pair], gen: GenerationArguments, batch_size: int = 32,
            max_source_length: int = 256, progress: bool = True) -> list[str]:
    """Decoded text for every pair's source, OOV copies mapped back to the source words."""
    model.eval()
    device = next(model.parameters()).device
    collate = Collator(tokenizer.pad_id, copy=True)
    outputs = []
    for start in tqdm(range(0, len(pairs), batch_size), desc="generating", disable=not progress, leave=False):
        chunk = pairs[start:start + batch_size]
        encoded = [encode_source(tokenizer, p, max_source_length) for p in chunk]
        batch = collate([{"input_ids": e.input_ids, "source_extended_ids": e.extended_ids, "labels": [0]}
                         for e in encoded])
        ids = generate(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                       batch["source_extended_ids"].to(device) if model.config.use_copy else None, gen)
        outputs += [tokenizer.decode(seq, e.oovs) for seq, e in zip(ids, encoded)]
    return outputs


def score(predictions: list[str], pairs: list[Pair], tokenizer: WordTokenizer) -> dict[str, float]:
    """EM (0–1), corpus BLEU and ROUGE-1/2/L F1 (0–100) against every reference, all
    compared in the tokenizer's word segmentation (what the model can write)."""
    refs = [[tokenizer.normalize(r) for r in p.references] for p in pairs]
    return {"exact_match": exact_match(predictions, refs), "bleu": corpus_bleu(predictions, refs),
            **rouge(predictions, refs)}


def provenance(model_args, data_args, ss_args, gen_args, train_config) -> dict:
    return {"model": asdict(model_args), "data": asdict(data_args), "scheduled_sampling": asdict(ss_args),
            "generation": asdict(gen_args), "seed": train_config.seed, "dtype": "float32",
            "mixed_precision": train_config.mixed_precision,
            "versions": package_versions()}


def train(model_args: Seq2SeqModelArguments, data_args: Seq2SeqDataArguments, ss_args: ScheduledSamplingArguments,
          gen_args: GenerationArguments, train_config: TrainingConfig, warm_start: WarmStartArguments | None = None
          ) -> dict:
    """Trains, evaluates on the validation (and test) file, saves model + tokenizer to
    ``output_dir`` and returns {"train": …, "validation": metrics, "test": metrics}. ``warm_start``:
    BERT folders for the encoder (and decoder), recorded as ``summary["warm_start"]``."""
    warm_start = warm_start or WarmStartArguments()
    if warm_start.decoder_from and not warm_start.encoder_from:
        raise InputError("--decoder_from needs --encoder_from: the decoder shares the encoder's embeddings",
                         field="decoder_from")
    if warm_start.encoder_from and (model_args.model_name_or_path or data_args.tokenizer_name):
        raise InputError("--encoder_from starts a new model with the BERT's tokenizer; it cannot be combined "
                         "with --model_name_or_path or --tokenizer_name", field="encoder_from")
    if data_args.train_file is None:
        raise ValueError("--train_file is required")
    set_seed(train_config.seed)  # before the model is built: its initialisation is part of the run
    target = _columns(data_args.target_column)
    eval_target = _columns(data_args.eval_target_column) if data_args.eval_target_column else target
    train_pairs = read_pairs(data_args.train_file, data_args.source_column, target)[: data_args.max_train_samples]
    warm_info = None
    if warm_start.encoder_from:
        tokenizer = WordTokenizer.from_pretrained(checkpoint_folder(warm_start.encoder_from))
        model, warm_info = warm_started_model(
            warm_start, tokenizer, model_args.copy, model_args.coverage, model_args.coverage_loss_weight,
            max(data_args.max_source_length, data_args.max_target_length))
        _refuse_other_sizes(model_args, model.config)
        logger.info("Warm start: encoder from %s, decoder from %s; initialised fresh: %s", warm_start.encoder_from,
                    warm_start.decoder_from or "nothing (a new decoder)", ", ".join(warm_info["initialized"]))
    elif model_args.model_name_or_path:
        tokenizer = WordTokenizer.from_pretrained(model_args.model_name_or_path)
        # --copy / --coverage add a head the saved model lacks (its parameters start fresh: a
        # denoising-pretrained model fine-tuned with copy); a head the saved model has is kept.
        heads = {key: True for key, on in (("use_copy", model_args.copy), ("use_coverage", model_args.coverage)) if on}
        model = SelfsupSeq2SeqForConditionalGeneration.from_pretrained(model_args.model_name_or_path, **heads)
    else:
        tokenizer = load_or_train_tokenizer(data_args.tokenizer_name, data_args.tokenizer_type,
                                            (t for p in train_pairs for t in (p.source, p.target)),
                                            data_args.vocab_size, data_args.min_frequency)
        model = new_model(model_args, tokenizer, max(data_args.max_source_length, data_args.max_target_length))
    copy = model.config.use_copy
    dataset = EncodedPairs(train_pairs, tokenizer, copy, data_args.max_source_length, data_args.max_target_length)
    validation = read_pairs(data_args.validation_file, data_args.source_column, eval_target)[
        : data_args.max_eval_samples] if data_args.validation_file else None

    def evaluate_fn(m, accelerator, state):
        # Every process decodes the whole (small) validation set: identical numbers, nothing counted twice.
        preds = predict(accelerator.unwrap_model(m), tokenizer, validation, gen_args,
                        train_config.per_device_eval_batch_size, data_args.max_source_length,
                        progress=accelerator.is_local_main_process)
        return score(preds, validation, tokenizer)

    def ss_loss(m, batch, counts, state):
        out = scheduled_sampling_loss(m, batch, ss_args.gold_probability(state.step), ss_args.ss_mode,
                                      counts["tokens"].clamp(min=1))
        return out.loss, out

    extra = {} if ss_args.scheduled_sampling == "none" else {"loss_fn": ss_loss}
    trainer = Trainer(model, train_config, dataset, Collator(tokenizer.pad_id, copy),
                      evaluate_fn=evaluate_fn if validation else None,
                      hparams={"copy": copy, "coverage": model.config.use_coverage,
                               "scheduled_sampling": ss_args.scheduled_sampling}, **extra)
    summary = {"train": trainer.train(),
               "provenance": provenance(model_args, data_args, ss_args, gen_args, train_config),
               "train_examples": len(dataset), "vocab_size": len(tokenizer),
               "train_target_oov_rate": _oov_rate(train_pairs, tokenizer)}
    if warm_info is not None:
        summary["warm_start"] = warm_info
    if validation:
        summary["validation"] = summary["train"]["eval"]
    out_dir = Path(train_config.output_dir)
    trainer.save_model(out_dir, tokenizer.hf)
    if data_args.test_file and trainer.accelerator.is_main_process:
        test_target = _columns(data_args.test_target_column) if data_args.test_target_column else eval_target
        test = read_pairs(data_args.test_file, data_args.source_column, test_target)[: data_args.max_eval_samples]
        model = trainer.accelerator.unwrap_model(trainer.model)
        preds = predict(model, tokenizer, test, gen_args, train_config.per_device_eval_batch_size,
                        data_args.max_source_length)
        summary["test"] = score(preds, test, tokenizer)
        with open(out_dir / "test_predictions.jsonl", "w") as f:
            for p, pair in zip(preds, test):
                f.write(json.dumps({"source": pair.source, "prediction": p, "references": pair.references}) + "\n")
    if trainer.accelerator.is_main_process:
        (out_dir / "results.json").write_text(json.dumps(summary, indent=2, default=str))
        write_card(out_dir, summary, data_args)
    return summary


def write_card(folder: Path, summary: dict, data_args) -> Path:
    """The model card: the validation (and test) scores as results.json has them."""
    config = summary["provenance"]["model"]
    results = [{"task": "text2text-generation", "dataset": {"name": Path(path).name, "type": "json", "split": split},
                "metrics": summary[split]}
               for split, path in (("validation", data_args.validation_file), ("test", data_args.test_file))
               if summary.get(split)]
    saved = json.loads((folder / "config.json").read_text())
    parts = [name for name in ("copy", "coverage") if saved.get(f"use_{name}")]
    warm_encoder = (summary.get("warm_start") or {}).get("encoder") or {}  # a BERT2BERT run's base model
    return write_model_card(
        folder, title="selfsup-seq2seq", pipeline_tag="text2text-generation", tags=("selfsup-seq2seq", *parts),
        base_model=config.get("model_name_or_path") or warm_encoder.get("source"),
        summary=f"An encoder-decoder trained with `scripts/train_seq2seq.py` on `{data_args.train_file}` "
                f"({summary['train_examples']} pairs, {summary['train'].get('steps')} optimizer steps, vocabulary "
                f"{summary['vocab_size']}). Exact match is 0-1; BLEU and ROUGE F1 are 0-100.",
        load=f"import selfsup  # registers selfsup-seq2seq\nfrom transformers import AutoModelForSeq2SeqLM\n"
             f"model = AutoModelForSeq2SeqLM.from_pretrained(\"{folder}\")\n"
             f"# decode: python scripts/generate.py --model_name_or_path {folder} --input_file test.jsonl",
        results=results, details={"Provenance": summary["provenance"]})


def _refuse_other_sizes(model_args: Seq2SeqModelArguments, config) -> None:
    """A warm-started model has the BERT's sizes: a size flag set to something else would be ignored."""
    defaults = Seq2SeqModelArguments()
    for key in ("hidden_size", "num_hidden_layers", "num_decoder_layers", "num_attention_heads", "intermediate_size",
                "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings"):
        asked, actual = getattr(model_args, key), getattr(config, key)
        if asked != getattr(defaults, key) and asked != actual:
            raise InputError(f"--{key} {asked}, but a model warm-started with --encoder_from has the BERT's "
                             f"({actual}): leave the flag out", field=key)


def _oov_rate(pairs: list[Pair], tokenizer: WordTokenizer) -> float:
    words = [w for p in pairs for w in tokenizer.words(p.target)]
    return sum(w not in tokenizer.vocab for w in words) / max(1, len(words))
