#!/usr/bin/env bash
# Everything this project measures or checks on a CUDA machine, in two parts that each fit a 10-minute slot:
#   bash parity/bench/gpu_session.sh checks   # gpu-marked tests, parity checks on CUDA, model + batched benchmarks
#   bash parity/bench/gpu_session.sh e2e      # end-to-end benchmark (training loop on real JPEGs), full-size demo
#   bash parity/bench/gpu_session.sh loader   # value_range on the device: gpu tests, CUDA parity, e2e with randaug in workers
#   bash parity/bench/gpu_session.sh split    # RandAugment split between workers and GPU (two fractions)
#   bash parity/bench/gpu_session.sh ab       # channels-last stem on/off (model bench), CPU pipeline per core here
#   bash parity/bench/gpu_session.sh opt      # optimizer variants, nvjpeg decode, optimizer gpu tests
# Logs and JSON go to $OUT (default ./gpu-out). Uses the machine's own torch; installs nothing beyond
# wheels found in .whl/ (e.g. simplejpeg, for the fast JPEG path), into /tmp/site.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
PY=python3
step() {  # step NAME TIMEOUT CMD...: run with a time limit, log to $OUT/NAME.log, print its tail
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo "=== $name: $*"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name: rc=$rc in $(( $(date +%s) - t0 ))s"
  tail -n "${TAIL:-25}" "$OUT/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
$PY -c "import torch, torchvision, numpy, os; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'numpy', numpy.__version__, 'cpus', len(os.sched_getaffinity(0)), torch.cuda.get_device_name())"
$PY -c "import simplejpeg; print('simplejpeg', simplejpeg.__version__)" || echo "simplejpeg missing: the fast JPEG path is off"
$PY -c "import numba; from torch_impl import numba_kernels as K; print('numba', numba.__version__, 'kernels on:', K.enabled())" \
  || echo "numba missing: the fast CPU path runs its numpy kernels"

case "${1:-checks}" in
checks)
  TAIL=15 step pytest_gpu 200 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_bench.py tests/test_fast_pipeline.py \
      tests/test_model.py tests/test_train.py
  TAIL=12 step check_cuda 200 $PY -m parity.cli check --device cuda --family fast_paths --family vit_forward \
      --report "$OUT/check_cuda"
  step bench_model 240 $PY -m parity.cli bench model --device cuda --compile --batch 1024 --steps 10 --repeats 3 \
      --warmup 3 --optimizer none adamw big_vision --json "$OUT/bench_model.json"
  step bench_batched 150 $PY -m parity.cli bench batched --device cuda --batch 1024 --steps 2 --repeats 3 \
      --json "$OUT/bench_batched.json"
  ;;
e2e)
  step bench_e2e 420 $PY -m parity.cli bench e2e --device cuda --batch 1024 --steps 30 \
      --augment ${E2E_AUGMENT:-loader device device-decode} \
      --json "$OUT/bench_e2e.json"
  step train_full 150 $PY -m parity.cli train --config vit_s16_i1k --data synthetic --full-size --skip-parity \
      --workdir /tmp/train_full --set total_steps=60 --set input.batch_size=1024 --set runtime.compile=true \
      --set runtime.device_augment=true --set log_training_steps=10 --set evals.val.log_steps=0 \
      --set evals.minival.log_steps=0 --set schedule.warmup_steps=10 --set input.num_workers=14
  ;;
loader)
  # RandAugment in the workers, value_range on the device (runtime.device_value_range, default on CUDA).
  $PY -c "
import torch
v = torch.arange(256, dtype=torch.float32)
print('CUDA tensor / 255.0 differs from the CPU true division on', int(((v.cuda() / 255.0).cpu() != v / 255.0).sum()),
      'of 256 values; / a device tensor:', int(((v.cuda() / torch.full((), 255.0, device='cuda')).cpu() != v / 255.0).sum()))"
  TAIL=8 step pytest_gpu 200 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_fast_pipeline.py tests/test_train.py
  TAIL=6 step check_cuda 150 $PY -m parity.cli check --device cuda --family preprocess --family fast_paths \
      --report "$OUT/check_cuda"
  step bench_e2e_loader 300 $PY -m parity.cli bench e2e --device cuda --batch 1024 --steps 30 --augment loader \
      --json "$OUT/bench_e2e_loader.json"
  ;;
split)
  # runtime.device_augment_fraction: RandAugment split between the workers and the GPU.
  TAIL=4 step check_cuda_pp 100 $PY -m parity.cli check --device cuda --family preprocess
  step bench_e2e_split 300 $PY -m parity.cli bench e2e --device cuda --batch 1024 --steps 30 --augment split loader \
      --device-fraction ${SPLIT_A:-0.3} --json "$OUT/bench_e2e_split.json"
  step bench_e2e_split_b 150 $PY -m parity.cli bench e2e --device cuda --batch 1024 --steps 30 --augment split \
      --device-fraction ${SPLIT_B:-0.2} --skip-model-only --skip-loader-only --json "$OUT/bench_e2e_split_b.json"
  ;;
ab)
  # The channels-last stem A/B (runtime.channels_last_stem) and the CPU pipeline per core on this host.
  step bench_model_cl 150 $PY -m parity.cli bench model --device cuda --compile --batch 1024 --steps 10 --repeats 3 \
      --warmup 3 --optimizer none big_vision --json "$OUT/bench_model_cl.json"
  step bench_model_nocl 150 $PY -m parity.cli bench model --device cuda --compile --batch 1024 --steps 10 \
      --repeats 3 --warmup 3 --optimizer none big_vision --no-channels-last --json "$OUT/bench_model_nocl.json"
  step bench_pipeline 150 $PY -m parity.cli bench pipeline --no-big-vision --json "$OUT/bench_pipeline.json"
  ;;
opt)
  step bench_model_opt 150 $PY -m parity.cli bench model --device cuda --compile --batch 1024 --steps 10 --repeats 3 \
      --warmup 3 --optimizer none adamw big_vision --json "$OUT/bench_model_opt.json"
  step bench_decode 120 $PY -m parity.cli bench decode --device cuda --batch 256 --json "$OUT/bench_decode.json"
  TAIL=8 step pytest_opt 120 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_optim.py
  ;;
esac
