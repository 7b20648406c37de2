#!/usr/bin/env bash
# The GPU figures of the README, in one run of under 8 minutes on one GPU, written as one JSON.
#
#   tools/gpu_check.sh [--out DIR]      # on the GPU machine: DIR/gpu_check.json (default runs/gpu_check)
#   tools/gpu_check.sh --smoke          # the same steps on CPU at toy sizes (the test that keeps it working)
#
# Figures, all at the CIFAR-10 config's supernet scale (nasnet space, C=16, 8 cells, 32x32, batch 64)
# unless said: supernet single-path steps/s and images/s with fp32 and bf16 autocast, each with and
# without channels_last, and its time / peak-memory ratio against the standalone subnet
# (tools/bench_supernet.py), and the memory a step of the recipe takes at the configs' sizes (its
# --memory section: peak allocated, dense and checkpointed); search evaluations/s (tools/bench_search.py); gdas / single-path and
# entmax / darts step-time ratios (tools/bench_relax.py); DARTS V2 (C=36, 20 cells) training
# images/s with bf16 autocast, channels_last and torch.compile each on and off, and NASNet-A Large's
# forward against timm's nasnetalarge (tools/bench_retrain.py); a `torchrun --nproc_per_node=1`
# supernet run of a few steps (NCCL). Data: random images, nothing downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
out=runs/gpu_check
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    *) echo "usage: tools/gpu_check.sh [--smoke] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"

if [ "$smoke" = 1 ]; then
  device=cpu; C=4; layers=3; batch=8; genotypes=1; repeats=1; retrain=(--amp --batch 2 --steps 1 --no-nasnet)
else   # on CUDA, bench_retrain always adds the bf16 and torch.compile variants
  device=cuda; C=16; layers=8; batch=64; genotypes=5; repeats=7; retrain=()
fi
net=(--C "$C" --layers "$layers")
step() { echo "== $*" >&2; }

for amp in off bf16; do
  for layout in contiguous channels_last; do
    step "supernet single path, amp=$amp, $layout"
    flags=(); [ "$layout" = channels_last ] && flags=(--channels-last)
    python tools/bench_supernet.py --device "$device" "${net[@]}" --batch "$batch" --genotypes "$genotypes" \
      --repeats "$repeats" --amp "$amp" "${flags[@]}" --json "$out/supernet_${amp}_${layout}.json"
  done
done
if [ "$smoke" = 0 ]; then
  step "supernet memory at the configs' sizes: dense, mid-thinning, single path, plain and checkpointed"
  python tools/bench_supernet.py --device "$device" "${net[@]}" --batch "$batch" --genotypes 1 --repeats 3 --memory \
    --json "$out/supernet_memory.json"
fi
step "search evaluations"
python tools/bench_search.py --device "$device" "${net[@]}" --dataset fake --image-size 32 --batch-size "$batch" \
  --genotypes "$((genotypes + 1))" --eval-batches 4 --json "$out/search.json"
step "relaxations"
python tools/bench_relax.py --device "$device" "${net[@]}" --batch "$batch" --size 32 --steps "$repeats" \
  --json "$out/relax.json"
step "retraining: DARTS V2 and NASNet-A Large"
python tools/bench_retrain.py --device "$device" "${retrain[@]}" --json "$out/retrain.json"
step "torchrun, one process"
python -m torch.distributed.run --standalone --nproc_per_node=1 -m supernet.train --out "$out/torchrun" \
  space=nasnet C="$C" layers="$layers" dataset=fake image_size=32 batch_size="$batch" epochs=1 max_steps=20 \
  log_every=10 workers=0 eval_subnets=1 eval_batches=1 device="$device" amp=bf16 > "$out/torchrun.log" 2>&1 \
  || { tail -20 "$out/torchrun.log" >&2; exit 1; }

python - "$out" "$smoke" <<'PY'
import json, sys
from pathlib import Path

import torch

out, smoke = Path(sys.argv[1]), sys.argv[2] == "1"
read = lambda name: json.loads((out / name).read_text())
supernet = {f"{amp}_{layout}": read(f"supernet_{amp}_{layout}.json")["single_path"]
            for amp in ("off", "bf16") for layout in ("contiguous", "channels_last")}
relax, search, retrain = read("relax.json"), read("search.json"), read("retrain.json")
checkpoint = torch.load(out / "torchrun" / "checkpoint.pt", weights_only=True)
figures = {
    "device": torch.cuda.get_device_name() if torch.cuda.is_available() and not smoke else "cpu",
    "smoke": smoke, "torch": torch.__version__,
    "supernet_single_path": {k: {"steps_per_s": round(v["steps_per_s"], 2), "images_per_s": round(v["images_per_s"], 1),
                                 "time_ratio": round(v["time_ratio"], 3),
                                 "peak_memory_ratio": v.get("peak_memory_ratio")} for k, v in supernet.items()},
    "search_evaluations_per_s": search["evaluations_per_s"],
    "gdas_vs_single_path_time_ratio": relax["gdas_vs_single_path"]["time_ratio"],
    "entmax_vs_darts_time_ratio": relax["entmax_vs_darts"]["time_ratio"],
    "darts_v2_train_images_per_s": retrain["cifar_train"],
    "nasnet_a_vs_timm": retrain["nasnet_a_vs_timm"],
    "torchrun_one_process": {"steps": checkpoint["step"], "backend": "nccl" if torch.cuda.is_available() and not smoke else "gloo"},
    "supernet_memory": None if smoke else read("supernet_memory.json")["memory"],
}
(out / "gpu_check.json").write_text(json.dumps(figures, indent=2) + "\n")
print(json.dumps(figures, indent=2))
PY
