#!/usr/bin/env bash
# The GPU checks of the training engine, as one command on a lent CUDA machine that has torch,
# lightning, torchmetrics and tensorboard but no jsonargparse (see docs/performance.md).
#
#   bash benchmarks/gpu_check.sh speed    # gpu.py, fit compiled: Transformer, V5, LSTM at batch 32; Transformer at 4096 bf16
#   bash benchmarks/gpu_check.sh full     # configs/transformer.yaml, all 200,000 steps, compiled; its test loss
#   bash benchmarks/gpu_check.sh compare  # fit and plain loops, each eager and compiled, at batch 32
#
# It reads names.txt from .devdata/ and wheels from .whl/ (both ignored by git; carried along):
#   mkdir -p .devdata && cp ../shared/data/names.txt .devdata/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl jsonargparse==4.53.0 docstring_parser==0.18.0 \
#     typeshed_client==2.15.0 lightning==2.6.6 pytorch-lightning==2.6.6
# Results go to $OUT (the device tool's folder that comes back), else benchmarks/results/.
set -euo pipefail
OUT=${OUT:-benchmarks/results}
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
python3 -c "import torch, lightning; print(torch.__version__, lightning.__version__, torch.cuda.get_device_name())"
case "${1:-speed}" in
  speed)  # the bars: fit compiled at 32, the Transformer at 4096 bf16; about 4 minutes
    python3 benchmarks/gpu.py --data .devdata/names.txt --configs transformer v5 lstm --sizes small \
      --kinds "fit compiled" --steps 500 --warmup 100 --json "$OUT/gpu_small.json" | tee "$OUT/gpu_small.md"
    python3 benchmarks/gpu.py --data .devdata/names.txt --configs transformer --sizes large \
      --kinds "fit compiled" --steps 200 --warmup 100 --json "$OUT/gpu_large.json" | tee "$OUT/gpu_large.md"
    ;;
  compare)  # every run kind side by side on one machine, where device time is left
    python3 benchmarks/gpu.py --data .devdata/names.txt --configs transformer v5 lstm --sizes small \
      --kinds fit "fit compiled" plain "plain compiled" --steps 500 --warmup 100 --json "$OUT/gpu_compare.json" \
      | tee "$OUT/gpu_compare.md"
    ;;
  full)
    time python3 -m makemore fit --config configs/transformer.yaml --data.path .devdata/names.txt \
      --trainer.accelerator gpu --model.compile true --checkpoint_root /tmp/runs \
      --trainer.enable_progress_bar false 2>&1 | tee "$OUT/transformer_full.log"
    python3 -m makemore test --config configs/transformer.yaml --data.path .devdata/names.txt \
      --trainer.accelerator gpu --ckpt_path /tmp/runs/transformer-1/last.ckpt 2>&1 | tee -a "$OUT/transformer_full.log"
    ;;
  *) echo "usage: bash benchmarks/gpu_check.sh speed|full|compare" >&2; exit 2 ;;
esac
