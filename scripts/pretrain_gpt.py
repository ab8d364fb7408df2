"""Causal-LM pretraining of selfsup-gpt (next-token prediction) on Accelerate.

    accelerate launch scripts/pretrain_gpt.py                      # embedded default, offline, minutes on a CPU
    accelerate launch scripts/pretrain_gpt.py --corpus ../shared/data/pretrain/ --corpus_layout paragraphs
    accelerate launch scripts/pretrain_gpt.py --model_name_or_path outputs/smollm2 --corpus my.txt \
        --block_size 256 --learning_rate 5e-5                      # continue pretraining a converted SmolLM2
    accelerate launch scripts/pretrain_gpt.py --output_dir outputs/pretrain-gpt --resume_from_checkpoint true

Data as transformers' run_clm: documents tokenized, joined with EOS, cut into --block_size
blocks, no padding; held-out documents give the perplexity. Every flag of CLMDataConfig,
GPTModelConfig and TrainingConfig can be set in a YAML file (--config) and overridden on the
command line. The result is a Hub-style folder that loads with AutoModelForCausalLM after
`import selfsup` and writes text through pipeline("text-generation").
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from accelerate.utils import set_seed
from transformers import AutoModelForCausalLM, AutoTokenizer

import selfsup  # noqa: F401  (registers selfsup-gpt)
from selfsup.cli import parse_config, run_script
from selfsup.errors import InputError
from selfsup.modeling import SelfsupGPTConfig, SelfsupGPTForCausalLM
from selfsup.pretrain.clm import (
    build_clm_data,
    collate_blocks,
    count_next_tokens,
    document_text,
    make_evaluate_fn,
    train_byte_level_bpe,
)
from selfsup.pretrain.clm_config import CLMDataConfig, GPTModelConfig
from selfsup.pretrain.data import load_documents
from selfsup.pretrain.model_card import write_clm_model_card
from selfsup.pretrain.tokenizer import check_trained, save_trained, training_record
from selfsup.provenance import package_versions
from selfsup.training import Trainer, TrainingConfig
from selfsup.training.loop import make_accelerator

# The embedded corpus packs into 2,268 training blocks of 128: 3 epochs of batch 32 (213 steps) at a
# peak LR of 2e-3, which a model this small tolerates.
DEFAULTS = {"output_dir": "outputs/pretrain-gpt", "learning_rate": 2e-3, "num_train_epochs": 3.0,
            "per_device_train_batch_size": 32, "warmup_ratio": 0.05, "lr_scheduler_type": "cosine",
            "weight_decay": 0.1, "adam_beta2": 0.95, "eval_steps": 100, "logging_steps": 20}
PROMPT = "Return the number of"


def load_tokenizer_for(data_cfg: CLMDataConfig, model_cfg: GPTModelConfig, accelerator, out_dir: Path):
    """--tokenizer_name, else the starting model's own, else a byte-level BPE trained once on the
    corpus by the main process (reused by a later run only if made from the same corpus and size)."""
    name = data_cfg.tokenizer_name or model_cfg.model_name_or_path
    if name is not None:
        return AutoTokenizer.from_pretrained(name)
    tok_dir = out_dir / "tokenizer"
    record = training_record(data_cfg.corpus, data_cfg.corpus_layout, data_cfg.allow_eval_splits, data_cfg.data_dir,
                             data_cfg.vocab_size)
    if (tok_dir / "tokenizer.json").exists():
        check_trained(tok_dir, record, log=accelerator.print)
    with accelerator.main_process_first():
        if accelerator.is_main_process and not (tok_dir / "tokenizer.json").exists():
            docs = load_documents(data_cfg.corpus, data_cfg.corpus_layout, allow_eval_splits=data_cfg.allow_eval_splits,
                                  data_dir=data_cfg.data_dir)
            save_trained(train_byte_level_bpe((document_text(s) for s in docs["sentences"]), data_cfg.vocab_size),
                         tok_dir, record)
    return AutoTokenizer.from_pretrained(tok_dir)


def starting_model(model_cfg: GPTModelConfig, tokenizer, block_size: int, log=print):
    """A new selfsup-gpt sized by ``model_cfg`` with positions for ``block_size``, or the causal LM
    of --model_name_or_path; a block longer than its positions is refused here, before training."""
    if model_cfg.model_name_or_path is None:
        fields = {k: v for k, v in asdict(model_cfg).items() if k != "model_name_or_path"}
        config = SelfsupGPTConfig(vocab_size=len(tokenizer), max_position_embeddings=block_size,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.pad_token_id, **fields)
        model = SelfsupGPTForCausalLM(config)
        log(f"new selfsup-gpt: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
        return model, "new"
    model = AutoModelForCausalLM.from_pretrained(model_cfg.model_name_or_path)
    limit = model.config.max_position_embeddings
    if block_size > limit:
        raise InputError(f"{block_size} is above the {limit} positions of {model_cfg.model_name_or_path}",
                         field="block_size")
    if len(tokenizer) > model.config.vocab_size:
        raise InputError(f"the tokenizer has {len(tokenizer)} tokens, the model {model.config.vocab_size} embeddings",
                         field="tokenizer_name")
    log(f"continuing {model.config.model_type} from {model_cfg.model_name_or_path}")
    return model, model_cfg.model_name_or_path


def main(args: list[str] | None = None) -> dict:
    data_cfg, model_cfg, train_cfg = parse_config((CLMDataConfig, GPTModelConfig, TrainingConfig), args, __doc__,
                                                  defaults=DEFAULTS)
    accelerator = make_accelerator(train_cfg)
    start, out_dir = time.time(), Path(train_cfg.output_dir)
    tokenizer = load_tokenizer_for(data_cfg, model_cfg, accelerator, out_dir)
    set_seed(train_cfg.seed)  # the initial weights too are a function of the seed
    model, model_info = starting_model(model_cfg, tokenizer, data_cfg.block_size, log=accelerator.print)

    with accelerator.main_process_first():  # the main process builds the cache, the others read it
        data = build_clm_data(data_cfg.corpus, tokenizer, data_cfg.block_size, data_cfg.corpus_layout,
                              data_cfg.eval_documents, train_cfg.seed, data_cfg.preprocessing_num_workers,
                              allow_eval_splits=data_cfg.allow_eval_splits, data_dir=data_cfg.data_dir)
    for count in data.sources:
        accelerator.print(count)
    accelerator.print(f"{data.num_documents} documents -> {len(data.train)} training and {len(data.eval)} held-out "
                      f"blocks of {data_cfg.block_size} tokens ({time.time() - start:.0f}s)")

    evaluate_fn = make_evaluate_fn(data.eval, train_cfg.per_device_eval_batch_size) if len(data.eval) else None
    trainer = Trainer(model, train_cfg, data.train, collate_blocks, count_fn=count_next_tokens,
                      evaluate_fn=evaluate_fn, accelerator=accelerator,
                      hparams={**asdict(data_cfg), **asdict(model_cfg)}, tokenizer=tokenizer)
    summary = trainer.train()
    final_dir = trainer.save_model(out_dir / "model", tokenizer)
    summary.update(starting_model=model_info, wall_seconds=time.time() - start, model_dir=str(final_dir),
                   train_blocks=len(data.train), eval_blocks=len(data.eval), data=asdict(data_cfg),
                   model=asdict(model_cfg), training=asdict(train_cfg), versions=package_versions())
    if accelerator.is_main_process:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        write_clm_model_card(final_dir, summary)
        ev = summary["eval"]
        print(f"\nDone in {summary['wall_seconds']:.0f}s. Model: {final_dir}")
        if ev:
            print(f"held-out perplexity {ev['perplexity']:.2f} (loss {ev['loss']:.3f} over {ev['tokens']:.0f} tokens)")
        print("Write with it:\n    import selfsup\n    from transformers import pipeline\n"
              f"    generate = pipeline('text-generation', model='{final_dir}')\n"
              f"    print(generate({PROMPT!r}, max_new_tokens=30)[0]['generated_text'])")
    accelerator.end_training()  # after the last collective (saving)
    return summary


if __name__ == "__main__":
    run_script(main)
