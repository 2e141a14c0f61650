#!/usr/bin/env bash
# The GPU check of fifa-train on real bases: for each shipped recipe, a base made from the published files in
# tests/fixtures/real_bases at full size (random weights: python -m fifa.modeling.random_base), then
#   1. tokens/s and peak GPU memory of our loop against a plain HF Trainer + peft loop on the same base and
#      batches (scripts/bench_train.py --skip-learn),
#   2. the recipe itself: STEPS steps with evaluation and checkpoints at STEPS/2, SIGKILL after the first
#      checkpoint, a rerun that resumes, prediction of 256 bench questions, scoring,
#   3. a 2-GPU DDP run (torchrun) where the machine has two GPUs.
#
#   scripts/bench_train_gpu.sh RESULTS_DIR [STEPS] [RECIPES...]     (make bench-train-gpu)
#
# RECIPES: qwen2-vl-2b (default), llava-1.5-7b (needs >= 40 GB). Results: RESULTS_DIR/*.json and run.log.
# Needs `make install` (.venv). SMOKE=1 runs the same path on CPU with shrunk bases (a test of this script).
set -uo pipefail
results=${1:?RESULTS_DIR}; steps=${2:-200}; shift 2 2>/dev/null || shift $#
recipes=("$@"); [ ${#recipes[@]} -gt 0 ] || recipes=(qwen2-vl-2b)
here=$(cd "$(dirname "$0")/.." && pwd)
py=$here/.venv/bin/python; [ -x "$py" ] || py=python3
bin=$(dirname "$py")
work=${TMPDIR:-/tmp}/fifa_gpu_bench
fix=$here/tests/fixtures/real_bases
mkdir -p "$results" "$work"
results=$(cd "$results" && pwd)
log=$results/run.log
say() { echo "== $*" | tee -a "$log"; }
declare -A config=([qwen2-vl-2b]=qwen2-vl-2b.yaml [qwen2.5-vl-7b]=qwen2-vl-2b.yaml [llava-1.5-7b]=llava-1.5-7b.yaml)
declare -A sources=([qwen2-vl-2b]="$fix/Qwen2-VL-2B-Instruct $fix/qwen2-tokenizer"
                    [qwen2.5-vl-7b]="$fix/Qwen2.5-VL-7B-Instruct $fix/qwen2-tokenizer" [llava-1.5-7b]="$fix/llava-1.5-7b-hf")
if [ "${SMOKE:-0}" = 1 ]; then
  device=cpu; shrink=--shrink; small=(--set model.image_size=56 --set heads.mask_dim=16 --set heads.pixel_channels=8
    --set heads.mask_size=32 --set train.batch_size=2 --set train.grad_accum=1 --set data.num_workers=0
    --set predict.max_new_tokens=6 --set model.gradient_checkpointing=false)
else
  device=cuda; shrink=; small=()
fi
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)

say "data: forged lfw faces -> annotate -> build ($(date -u +%FT%TZ))"
"$py" "$here/scripts/bench_train.py" --work "$work/data" --n 200 --skip-learn --skip-speed >>"$log" 2>&1
build=$work/data/chain/build
[ -f "$build/bench.parquet" ] || { say "no build at $build (see $log)"; exit 1; }
"$py" - "$build/bench.parquet" "$build/bench256.parquet" <<'EOF'
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
pq.write_table(t.slice(0, min(256, t.num_rows)), sys.argv[2])
EOF

for r in "${recipes[@]}"; do
  cfg=$here/modeling/configs/${config[$r]}
  base=$work/base-$r
  sets=(--set "model.base=$base" "${small[@]}")
  say "$r: random base from the published files ($device)"
  rm -rf "$base"
  "$py" -m fifa.modeling.random_base --sources ${sources[$r]} --out "$base" --device "$device" $shrink \
    | tee "$results/$r.base.json"

  say "$r: tokens/s and peak memory, ours vs plain Trainer + peft"
  "$py" "$here/scripts/bench_train.py" --build "$build" --work "$work/speed-$r" --skip-learn --config "$cfg" \
    --speed-steps 30 "${sets[@]}" 2>&1 | grep -v "^W0000" | tail -4 | tee -a "$log"
  cp "$work/speed-$r/bench_train.json" "$results/$r.speed.json" 2>/dev/null

  say "$r: $steps steps, eval + checkpoints every $((steps / 2)), SIGKILL after the first, resume"
  run=$work/run-$r; rm -rf "$run"
  train=("$bin/fifa-train" run --config "$cfg" --data "$build" --out "$run" --no-progress "${sets[@]}"
         --set "train.max_steps=$steps" --set "train.save_every=$((steps / 2))" --set "eval.every=$((steps / 2))"
         --set eval.max_questions=64)
  t0=$(date +%s)
  "${train[@]}" >>"$log" 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null && [ ! -f "$run/latest.json" ]; do sleep 2; done
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  killed_at=$(cat "$run/latest.json" 2>/dev/null)
  "${train[@]}" >>"$log" 2>&1; rc=$?
  t1=$(date +%s)
  "$bin/fifa-train" predict --checkpoint "$run" --bench "$build/bench256.parquet" --out "$run/preds.parquet" \
    --no-progress >>"$log" 2>&1; prc=$?
  t2=$(date +%s)
  "$bin/fifa-bench" score --bench "$build/bench256.parquet" --submission "$run/preds.parquet" --out "$run/report" \
    --no-meteor >>"$log" 2>&1; src=$?
  "$py" - "$run" "$results/$r.recipe.json" "$rc" "$prc" "$src" "$((t1 - t0))" "$((t2 - t1))" "$killed_at" <<'EOF'
import json, sys
from pathlib import Path
run, out, rc, prc, src, train_s, pred_s, killed = sys.argv[1:9]
rows = [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines()] if (Path(run) / "metrics.jsonl").is_file() else []
rep = Path(run) / "report" / "report.json"
json.dump({"train_rc": int(rc), "predict_rc": int(prc), "score_rc": int(src), "train_and_resume_s": int(train_s),
           "predict_256_s": int(pred_s), "killed_after": killed, "evals": [r for r in rows if any(k.startswith("eval") for k in r)],
           "last": [r for r in rows if "loss" in r][-1:], "report": json.loads(rep.read_text()) if rep.is_file() else None},
          open(out, "w"), indent=1)
EOF
  say "$r: train rc=$rc predict rc=$prc score rc=$src ($(cat "$results/$r.recipe.json" | head -c 300))"

  if [ "$ngpu" -ge 2 ]; then
    say "$r: 2-GPU DDP"
    rm -rf "$work/ddp-$r"
    "$bin/torchrun" --nproc_per_node 2 -m fifa.modeling.cli run --config "$cfg" --data "$build" --out "$work/ddp-$r" \
      --no-progress "${sets[@]}" --set train.max_steps=40 --set train.save_every=20 --set eval.every=20 \
      --set eval.max_questions=64 >>"$log" 2>&1; echo "{\"ddp_rc\": $?}" > "$results/$r.ddp.json"
    cp "$work/ddp-$r/metrics.jsonl" "$results/$r.ddp.metrics.jsonl" 2>/dev/null
  fi
  rm -rf "$base" "$work/speed-$r"   # gigabytes of random weights and checkpoints
done
say "done ($(date -u +%FT%TZ)): $results"
