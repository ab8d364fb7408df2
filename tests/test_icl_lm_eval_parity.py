"""The same task YAML and the same model through lm-evaluation-harness itself and through this
harness: identical prompts (contexts and continuations) and per-example log-likelihoods
within 1e-4, at 0 shots, with the same demonstrations (lm-eval's first_n sampler), under a
chat template (multiturn and single-turn, with a system instruction), for multiple input
(WinoGrande-style), loglikelihood and generate_until tasks, and for a task group.

The model is a tiny random Llama with a byte-level tokenizer and a chat template, saved to a
temporary folder that both harnesses load with transformers."""
from __future__ import annotations

import json
import logging

import pytest
import torch

lm_eval = pytest.importorskip("lm_eval", reason="pip install 'selfsup[test]' (lm-eval is the reference)")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

from selfsup.icl.generation import cut  # noqa: E402
from selfsup.icl.harness import evaluate_task  # noqa: E402
from selfsup.icl.models import load_model  # noqa: E402
from selfsup.icl.requests import ChatFormat  # noqa: E402
from selfsup.icl.tasks import get_icl_tasks  # noqa: E402

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<eos>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")

TEST = [
    {"context": "Tom went to the store.", "question": "Why?", "answerA": "to buy milk", "answerB": "to sleep",
     "answerC": "to swim", "label": "1", "sentence": "The cup fell off the table because _ was tilted.",
     "option1": "the cup", "option2": "the table", "answer": "2", "text": "She opened the door and saw the sea"},
    {"context": "Ann saw a dog.", "question": "What next?", "answerA": "she ran", "answerB": "she petted it",
     "answerC": "she flew", "label": "2", "sentence": "Max gave Sam a book since _ had finished it.",
     "option1": "Max", "option2": "Sam", "answer": "1", "text": "The bird sang all morning long"},
    {"context": "It rained all day.", "question": "What happened?", "answerA": "the road got wet",
     "answerB": "the sun shone", "answerC": "nothing", "label": "1",
     "sentence": "The ball broke the window because _ was fragile.", "option1": "the ball",
     "option2": "the window", "answer": "2", "text": "He ate the cake in one bite"},
]
TRAIN = [
    {"context": "Lea baked bread.", "question": "Why?", "answerA": "she was hungry", "answerB": "to fly",
     "answerC": "to dig", "label": "1", "sentence": "The dog chased the cat until _ got tired.",
     "option1": "the dog", "option2": "the cat", "answer": "1", "text": "We walked home in the rain"},
    {"context": "Bo lost his keys.", "question": "What next?", "answerA": "he sang", "answerB": "he looked for them",
     "answerC": "he slept", "label": "2", "sentence": "Amy thanked Liz because _ had helped her.",
     "option1": "Amy", "option2": "Liz", "answer": "2", "text": "The river ran fast after the storm"},
]

SIQA_BASE = """\
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder}/test.jsonl
    train: {folder}/train.jsonl
test_split: test
fewshot_split: train
fewshot_config:
  sampler: first_n
metadata:
  version: 1.0
"""
FILES = {
    "_base.yaml": SIQA_BASE,
    "siqa.yaml": """\
include: _base.yaml
task: toy_siqa
tag: toy_tag
output_type: multiple_choice
description: "Answer the question.\\n\\n"
doc_to_text: "{{context}} Q: {{question}}\\nA:"
doc_to_choice: "{{[answerA, answerB, answerC]}}"
doc_to_target: "{{label|int - 1}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
""",
    # WinoGrande as templates: the gold index as doc_to_text makes the choices the contexts
    "wino.yaml": """\
include: _base.yaml
task: toy_wino
num_fewshot: 1   # used when the command line gives no shots, by lm-eval and by scripts/icl_eval.py
output_type: multiple_choice
fewshot_delimiter: "\\n###\\n"
doc_to_text: "{{answer|int - 1}}"
doc_to_choice: "{{[sentence.split('_')[0] + option1, sentence.split('_')[0] + option2]}}"
doc_to_target: "{{sentence.split('_')[1].strip()}}"
metric_list:
  - metric: acc
""",
    "lastword.yaml": """\
include: _base.yaml
task: toy_lastword
output_type: loglikelihood
doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}"
doc_to_target: "{{' ' + text.split(' ')[-1]}}"
target_delimiter: ""
""",
    "gen.yaml": """\
include: _base.yaml
task: toy_gen
output_type: generate_until
doc_to_text: "Complete: {{text.split(' ')[:-1]|join(' ')}}"
doc_to_target: "{{text.split(' ')[-1]}}"
generation_kwargs:
  until: ["\\n", "V", "p"]   # characters this random model writes: both harnesses must stop there
  max_gen_toks: 6
  do_sample: false
metric_list:
  - metric: exact_match
""",
    "group.yaml": "group: toy_group\ntask: [toy_tag, toy_wino]\n",
}


def save_tiny_llama(folder, bos: bool = False) -> None:
    """A random 2-layer Llama and a byte-level tokenizer with a chat template. ``bos``: the
    tokenizer puts <bos> before every text (as Llama's) and the chat template writes it too."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)} | {"<eos>": 256} | ({"<bos>": 257} if bos else {})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 257)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", bos_token="<bos>" if bos else None)
    tokenizer.chat_template = ("{{ bos_token }}" if bos else "") + CHAT_TEMPLATE
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=37,
                                         max_position_embeddings=1024, eos_token_id=256,
                                         bos_token_id=257 if bos else None, pad_token_id=None))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm_eval_parity")
    for name, rows in (("test.jsonl", TEST), ("train.jsonl", TRAIN)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name, text in FILES.items():
        (root / name).write_text(text.replace("{folder}", str(root)), encoding="utf-8")
    save_tiny_llama(root / "model")
    return root


@pytest.fixture(scope="module")
def ours_model(folder):
    return load_model(str(folder / "model"))


def lm_eval_run(folder, task: str, shots: int, chat: ChatFormat | None = None, model="model") -> dict:
    """lm-eval's own run: ``{"samples": {task: [per-doc samples]}, "results": ...}``. ``model``: a
    model folder's name in ``folder``, or an lm-eval model object."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    chat = chat or ChatFormat()
    loaded = not isinstance(model, str)
    return simple_evaluate(model=model if loaded else "hf",
                           model_args=None if loaded else {"pretrained": str(folder / model), "dtype": "float32",
                                                           "device": "cpu"},
                           tasks=[task], task_manager=TaskManager(include_path=str(folder), include_defaults=False),
                           num_fewshot=shots, batch_size=4, log_samples=True,
                           apply_chat_template=chat.apply_chat_template, system_instruction=chat.system_instruction,
                           fewshot_as_multiturn=chat.fewshot_as_multiturn, bootstrap_iters=0)


def ours_run(folder, ours_model, task: str, shots: int, chat: ChatFormat | None = None):
    (spec,) = get_icl_tasks(task, include_path=str(folder))
    model, tokenizer = ours_model
    return evaluate_task(model, tokenizer, spec, shots, batch_size=3, chat=chat, bootstrap_iters=10)


CASES = [
    ("toy_siqa", 0, None),
    ("toy_siqa", 2, None),
    ("toy_siqa", 2, ChatFormat(True, "Be brief.", fewshot_as_multiturn=True)),
    ("toy_siqa", 1, ChatFormat(True, None, fewshot_as_multiturn=False)),
    ("toy_wino", 1, None),
    ("toy_wino", 2, ChatFormat(True, "Fill the blank.", fewshot_as_multiturn=True)),
    ("toy_lastword", 1, None),
]


@pytest.mark.parametrize("task, shots, chat", CASES, ids=lambda v: repr(v) if isinstance(v, ChatFormat) else None)
def test_loglikelihoods_and_prompts_equal_lm_eval(folder, ours_model, task, shots, chat):
    compare(folder, ours_model, task, shots, chat, "model")


@pytest.mark.parametrize("task, shots, chat", [CASES[1], CASES[2], CASES[6]],
                         ids=lambda v: repr(v) if isinstance(v, ChatFormat) else None)
def test_a_tokenizer_that_adds_bos_gets_it_as_in_lm_eval_and_not_twice_under_a_chat_template(folder, task, shots,
                                                                                            chat):
    save_tiny_llama(folder / "bos_model", bos=True)
    model, tokenizer = load_model(str(folder / "bos_model"))
    assert tokenizer.encode("a")[0] == 257
    records = compare(folder, (model, tokenizer), task, shots, chat, "bos_model")
    assert all(p.startswith("<bos>") == bool(chat) for r in records for p in r["prompts"])


@pytest.mark.slow
def test_smollm2_chat_templated_few_shot_equals_lm_eval(folder, smollm2_gguf):
    from lm_eval.models.huggingface import HFLM

    model, tokenizer = load_model(str(smollm2_gguf))  # dequantised once, handed to both harnesses
    records = compare(folder, (model, tokenizer), "toy_siqa", 2, ChatFormat(True, "Be brief.", True),
                      HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4))
    assert records[0]["prompts"][0].startswith("<|im_start|>system\nBe brief.\n\nAnswer the question.")


def compare(folder, ours_model, task, shots, chat, model) -> list[dict]:
    """lm-eval and this harness on one task: the same prompts, log-likelihoods within 1e-4."""
    reference = lm_eval_run(folder, task, shots, chat, model)
    samples = sorted(reference["samples"][task], key=lambda s: s["doc_id"])
    result = ours_run(folder, ours_model, task, shots, chat)
    assert len(samples) == len(result.records) == len(TEST)
    worst = 0.0
    for sample, record in zip(samples, result.records, strict=True):
        contexts = [ctx for ctx, _ in sample["arguments"]]
        assert record["prompts"] == contexts
        if task != "toy_wino" and not (chat and chat.apply_chat_template) and task != "toy_lastword":
            assert [cont for _, cont in sample["arguments"]] == [" " + c for c in record["continuations"]]
        theirs = [ll for ll, _ in sample["filtered_resps"]]
        worst = max(worst, max(abs(a - b) for a, b in zip(theirs, record["logprobs"], strict=True)))
        assert [bool(g) for _, g in sample["filtered_resps"]] == record["is_greedy"]
    assert worst < 1e-4
    metrics = reference["results"][task]
    for name in ("acc", "acc_norm"):
        if f"{name},none" in metrics:
            assert result.metrics[name] == pytest.approx(metrics[f"{name},none"])
    return result.records


def test_generate_until_contexts_and_answers_equal_lm_eval(folder, ours_model):
    reference = lm_eval_run(folder, "toy_gen", 1)
    samples = sorted(reference["samples"]["toy_gen"], key=lambda s: s["doc_id"])
    result = ours_run(folder, ours_model, "toy_gen", 1)
    spec = get_icl_tasks("toy_gen", include_path=str(folder))[0]
    assert spec.until == ("\n", "V", "p") and spec.max_gen_toks == 6
    for sample, record in zip(samples, result.records, strict=True):
        (context, kwargs), = sample["arguments"]
        assert record["prompts"] == [context] and kwargs["until"][:3] == list(spec.until)
        # lm-eval's answer is the generation cut at the first stop sequence (delimiter kept)
        assert cut(record["generation"], spec.until)[0] == sample["filtered_resps"][0]
    assert any(r["finish"] == "stop" for r in result.records)


def test_a_group_and_a_tag_expand_to_the_tasks_lm_eval_loads(folder):
    from lm_eval.tasks import TaskManager

    loaded = TaskManager(include_path=str(folder), include_defaults=False).load_task_or_group(["toy_group"])

    def leaves(d):
        return [n for k, v in d.items() for n in (leaves(v) if isinstance(v, dict) else [k])]

    assert sorted(t.name for t in get_icl_tasks("toy_group", include_path=str(folder))) == sorted(leaves(loaded))
    assert [t.name for t in get_icl_tasks("toy_tag", include_path=str(folder))] == ["toy_siqa"]
    everything = sorted(t.name for t in get_icl_tasks(str(folder)))
    assert everything == ["toy_gen", "toy_lastword", "toy_siqa", "toy_wino"]


def test_the_script_runs_a_group_from_include_path_with_a_chat_template_as_lm_eval(folder, tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("icl_eval", Path(__file__).parent.parent / "scripts" / "icl_eval.py")
    icl_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(icl_eval)
    icl_eval.main(["--model", str(folder / "model"), "--tasks", "toy_group", "--include_path", str(folder),
                   "--apply_chat_template", "--system_instruction", "Be brief.", "--output_dir", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())
    prov = results["provenance"]
    assert (prov["apply_chat_template"], prov["system_instruction"], prov["fewshot_as_multiturn"]) == (
        True, "Be brief.", True)  # multiturn by default under a chat template, as lm-eval's CLI
    assert prov["num_fewshot"] == {"toy_siqa": [0], "toy_wino": [1]}  # each task's own num_fewshot
    assert results["tasks"]["toy_wino"]["dialect"] == "lm-eval" and set(results["results"]) == {"toy_siqa", "toy_wino"}
    saved = json.loads((tmp_path / "result_toy_wino_1shot.json").read_text())
    assert saved["settings"]["apply_chat_template"] is True and saved["settings"]["system_instruction"] == "Be brief."
    reference = lm_eval_run(folder, "toy_wino", None, ChatFormat(True, "Be brief.", fewshot_as_multiturn=True))
    samples = sorted(reference["samples"]["toy_wino"], key=lambda s: s["doc_id"])
    ours = [json.loads(line) for line in (tmp_path / "samples_toy_wino_1shot.jsonl").read_text().splitlines()]
    for sample, record in zip(samples, ours, strict=True):
        assert record["prompts"] == [ctx for ctx, _ in sample["arguments"]]
        assert record["logprobs"] == pytest.approx([ll for ll, _ in sample["filtered_resps"]], abs=1e-4)
