#!/usr/bin/env bash
# The one-call GPU comparison (issue 7): PyTorch's reference figures and every benchmark of this toolkit on
# the same card, merged into one JSON with the ratios. See bench/results/README.md for how to run it.
#
#   bash bench/gpu_compare.sh        (on a machine with Deno, a Vulkan driver and, for the torch figures,
#                                     python3 with torch, transformers and peft)
#
# Steps (each under its own time cap, all inside GPU_COMPARE_BUDGET_S, default 540 s, so the whole call fits
# one 10-minute command with the machine's setup): bench/torch_reference.py; bench:matmul with autotuning at
# 4096³ and the TinyLlama shapes; training throughput at the TinyLlama shape (fp32 full fine-tuning 4×1024
# against torch, LoRA r=16) and Llama-7B LoRA r=16 on an f16 base (1×1024); scoring and generation at the
# TinyLlama shape. A failed or timed-out step is recorded and the next one runs.
#
# Environment:
#   OUT                   where the results land (the device tool's output folder; default bench/results)
#   GPU_COMPARE_BUDGET_S  seconds for everything (default 540)
#   GPU_COMPARE_QUICK=1   the same steps at the tiny shape with --quick (a check on the CPU adapter)
#   TORCH_OUTPUT=FILE     use this captured torch_reference.py output instead of running it
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start_ns=$(date +%s%N)
budget=${GPU_COMPARE_BUDGET_S:-540}
quick=${GPU_COMPARE_QUICK:-0}
out=${OUT:-bench/results}
mkdir -p "$out"
parts=$(mktemp -d)
timings=$parts/timings.tsv
: >"$timings"
deno_run=(deno run --allow-read --allow-write --allow-env)

card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
slug=$(printf '%s' "${card:-unknown-card}" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')
[ "$quick" = 1 ] && slug="quick-$slug"
stem="$out/$(date -u +%Y-%m-%d)-$slug"
exec > >(tee "$stem.log") 2>&1

elapsed_ms() { echo $((($(date +%s%N) - start_ns) / 1000000)); }

# step NAME CAP_SECONDS COMMAND...: runs COMMAND under min(CAP, what the budget has left), records its time
# and exit status (124: timed out; 125: skipped for lack of time).
step() {
  local name=$1 cap=$2
  shift 2
  local left=$((budget - $(elapsed_ms) / 1000 - 15)) # 15 s stay for the merge
  if ((left < 20)); then
    echo "== $name: skipped (${left} s of the budget left)"
    printf '%s\t0\t125\n' "$name" >>"$timings"
    return
  fi
  ((cap > left)) && cap=$left
  echo "== $name (at most ${cap} s, at $(($(elapsed_ms) / 1000)) s): $*"
  local t0
  t0=$(date +%s%N)
  timeout -k 5 "$cap" "$@"
  local rc=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf '%s\t%d.%03d\t%d\n' "$name" $((ms / 1000)) $((ms % 1000)) "$rc" >>"$timings"
  echo "== $name: exit $rc after $((ms / 1000)).$((ms % 1000 / 100)) s"
}

echo "card: ${card:-none (no nvidia-smi)}; $(deno --version | head -1); budget ${budget} s; results in $stem.*"

torch_txt=$parts/torch.txt
if [ -n "${TORCH_OUTPUT:-}" ]; then
  cp "$TORCH_OUTPUT" "$torch_txt"
  echo "== torch: using $TORCH_OUTPUT"
elif python3 -c "import torch, transformers" 2>/dev/null; then
  PYTHONUNBUFFERED=1 step torch 200 python3 bench/torch_reference.py >"$torch_txt.raw"
  cat "$torch_txt.raw"
  grep -E '^(torch |RESULT |FAIL )' "$torch_txt.raw" >"$torch_txt"
else
  echo "== torch: python3 cannot import torch and transformers here; no torch ratios"
fi
torch_flag=()
[ -s "$torch_txt" ] && torch_flag=(--torch "$torch_txt")

tuning=$parts/matmul-tuning.json
if [ "$quick" = 1 ]; then
  model=(--preset tiny --quick)
  matmul_sizes=64,96x80x72
  big_batch=(--batch 2 --seq 64)
  llama7b=(--preset tiny --quick)
  eval_sizes=(--docs 4 --batch 4)
  gen_sizes=(--slots 2 --prompt 64 --new 16 --steps-per-submit 8)
else
  model=(--preset tinyllama)
  matmul_sizes=4096,4096x2048x2048,4096x5632x2048,4096x32000x2048
  big_batch=(--batch 4 --seq 1024)
  llama7b=(--preset llama7b --batch 1 --seq 1024)
  eval_sizes=(--docs 32 --batch 16)
  gen_sizes=(--slots 16 --prompt 512 --new 128 --steps-per-submit 8)
fi

step matmul 150 "${deno_run[@]}" bench/matmul.ts --sizes "$matmul_sizes" --autotune --tuning "$tuning" \
  --json "$parts/matmul.json"
# The other benchmarks use the tuned kernels when autotuning finished; the defaults otherwise.
tuning_flag=()
[ -s "$tuning" ] && tuning_flag=(--tuning "$tuning")
step train_fp32 110 "${deno_run[@]}" bench/train_step.ts "${model[@]}" "${big_batch[@]}" --warmup 1 --steps 3 \
  "${torch_flag[@]}" "${tuning_flag[@]}" --json "$parts/train_fp32.json"
step train_lora16 90 "${deno_run[@]}" bench/train_step.ts "${model[@]}" "${big_batch[@]}" --lora 16 --warmup 1 \
  --steps 3 "${torch_flag[@]}" "${tuning_flag[@]}" --json "$parts/train_lora16.json"
step train_llama7b_lora16_f16 110 "${deno_run[@]}" bench/train_step.ts "${llama7b[@]}" --lora 16 --f16-base \
  --warmup 1 --steps 2 "${tuning_flag[@]}" --json "$parts/train_llama7b_lora16_f16.json"
step eval 70 "${deno_run[@]}" bench/eval_throughput.ts "${model[@]}" "${eval_sizes[@]}" "${tuning_flag[@]}" \
  --json "$parts/eval.json"
step generate 60 "${deno_run[@]}" bench/generate.ts "${model[@]}" "${gen_sizes[@]}" "${tuning_flag[@]}" \
  --json "$parts/generate.json"

merge=(--parts "$parts" --timings "$timings" --out "$stem.json")
[ -n "$card" ] && merge+=(--card "$card")
[ -s "$torch_txt" ] && merge+=(--torch "$torch_txt") && cp "$torch_txt" "$stem-torch.txt"
[ -s "$tuning" ] && merge+=(--tuning "$tuning") && cp "$tuning" "$stem-matmul-tuning.json"
deno run --allow-read --allow-write bench/merge_results.ts "${merge[@]}"
rc=$?
echo "== done in $(($(elapsed_ms) / 1000)) s; steps (name, seconds, exit status):"
cat "$timings"
rm -rf "$parts"
exit $rc
