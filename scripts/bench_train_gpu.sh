#!/usr/bin/env bash
# fifa-train on a GPU at real size: random-weight Qwen2-VL-2B and LLaVA-1.5-7B (their published configs,
# scripts/make_random_base.py) trained through our loop and through a plain Hugging Face Trainer + peft
# loop on the same rows (scripts/bench_train.py --skip-learn): tokens/s and peak GPU memory of each.
#
#   scripts/bench_train_gpu.sh BUILD RESULTS_DIR [STEPS] [BASES...]
#
# BUILD: any build (its text trains the tokenizer, its rows are the data). One JSON per base lands in
# RESULTS_DIR as soon as it is measured. Needs a CUDA GPU with >= 40 GB for the 7B base.
set -uo pipefail
build=${1:?BUILD}; results=${2:?RESULTS_DIR}; steps=${3:-20}; shift 3 2>/dev/null || shift $#
bases=("$@"); [ ${#bases[@]} -gt 0 ] || bases=(qwen2-vl-2b llava-1.5-7b)
here=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/fifa_gpu_bench
mkdir -p "$results" "$work"
declare -A config=([qwen2-vl-2b]=qwen2-vl-2b.yaml [llava-1.5-7b]=llava-1.5-7b.yaml)
for base in "${bases[@]}"; do
  echo "== $base: random weights"
  python3 "$here/scripts/make_random_base.py" --base "$base" --texts "$build" --out "$work/$base" 2>&1 | tail -1 \
    | tee "$results/$base.base.json"
  echo "== $base: $steps steps, ours then plain"
  PYTHONUNBUFFERED=1 python3 "$here/scripts/bench_train.py" --build "$build" --work "$work/run-$base" --skip-learn \
    --config "$here/modeling/configs/${config[$base]}" --speed-steps "$steps" --set "model.base=$work/$base" 2>&1 \
    | grep -v "^W0000" | tail -8
  cp "$work/run-$base/bench_train.json" "$results/$base.json" 2>/dev/null
  rm -rf "$work/$base" "$work/run-$base"   # 4-14 GB of random weights and checkpoints
done
