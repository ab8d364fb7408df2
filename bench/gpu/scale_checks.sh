#!/usr/bin/env bash
# The GPU checks of the issue "Correct at scale", as one script for a lent 1-GPU machine
# (the device tool runs it from the repo root with the wheels of .whl/ carried):
#   1. bf16 BERT-base pretraining step, tokens/s: selfsup vs transformers' BertForPreTraining;
#   2. 1-GPU bf16 pretraining under FSDP and under DeepSpeed ZeRO-2, each run straight through,
#      run again killed with SIGKILL after its first checkpoint and resumed, then the saved
#      model loaded with AutoModelForMaskedLM; weights of the two runs compared.
# Logs and JSON go to $OUT (bench/results/gpu-scale-checks/ once fetched).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  > "$OUT/pip.log" 2>&1 || { cat "$OUT/pip.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import importlib, torch
for m in ("torch", "transformers", "accelerate", "datasets", "deepspeed", "pyarrow", "safetensors"):
    try: print(m, importlib.import_module(m).__version__)
    except Exception as e: print(m, "unavailable:", repr(e)[:200])
print("gpu", torch.cuda.get_device_name())
PY

echo "== 1. bf16 BERT-base throughput"
timeout 240 python3 bench/pretrain_throughput.py --device cuda --bf16 --sizes base --batch 128 --repeats 20 \
  --output "$OUT/throughput-bert-base-bf16.json" 2>&1 | tail -3 | tee "$OUT/throughput.log"

run_backend() {  # $1: accelerate config name
  local name=$1 root=/tmp/$1 log="$OUT/$1.log"
  local launch=(python3 -m accelerate.commands.launch --config_file "configs/accelerate/$name.yaml" --num_processes 1
                --mixed_precision bf16 scripts/pretrain.py --max_steps 60 --save_steps 20 --logging_steps 10
                --eval_steps 30 --per_device_train_batch_size 32 --report_to none --seed 3)
  echo "== 2. $name: straight run" | tee "$log"
  timeout 200 "${launch[@]}" --output_dir "$root/straight" >> "$log" 2>&1 || { echo "straight run failed"; tail -30 "$log"; return; }
  echo "== $name: killed after the first checkpoint" | tee -a "$log"
  "${launch[@]}" --output_dir "$root/killed" >> "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 1500); do [ -d "$root/killed/checkpoints/step-00000020" ] && break; sleep 0.1; done
  pkill -9 -f "output_dir $root/killed"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  ls "$root/killed/checkpoints" >> "$log" 2>&1; [ -d "$root/killed/model" ] && echo "WARNING: finished before the kill" >> "$log"
  echo "== $name: resumed" | tee -a "$log"
  timeout 200 "${launch[@]}" --output_dir "$root/killed" --resume_from_checkpoint true >> "$log" 2>&1 || { echo "resume failed"; tail -30 "$log"; return; }
  python3 - "$root" "$name" <<'PY' 2>&1 | tee -a "$log" | tee "$OUT/$name-compare.json"
import json, sys, torch, selfsup
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer
root, name = sys.argv[1], sys.argv[2]
a, b = load_file(f"{root}/straight/model/model.safetensors"), load_file(f"{root}/killed/model/model.safetensors")
diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
model = AutoModelForMaskedLM.from_pretrained(f"{root}/killed/model").cuda().eval()
tok = AutoTokenizer.from_pretrained(f"{root}/killed/model")
enc = tok(["Return the [MASK] of the list."], return_tensors="pt").to("cuda")
with torch.no_grad():
    logits = model(**enc).logits
pos = (enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0]
s1, s2 = (json.load(open(f"{root}/{r}/summary.json")) for r in ("straight", "killed"))
print(json.dumps({"backend": name, "max_abs_weight_diff_straight_vs_resumed": diff, "same_keys": a.keys() == b.keys(),
                  "loaded_with": type(model).__name__, "fill_mask_top5": tok.convert_ids_to_tokens(logits[0, pos].topk(5).indices.tolist()),
                  "eval_straight": s1["eval"], "eval_resumed": s2["eval"], "steps": [s1["steps"], s2["steps"]]}, indent=1))
PY
}
run_backend fsdp
run_backend deepspeed-zero2
