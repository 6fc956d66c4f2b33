#!/bin/bash
# The GPU checks of mint_rl in one go, on a machine with a CUDA GPU and a CUDA build of torch:
#   1. build the extension mint_rl._C in place with its CUDA kernels (TORCH_CUDA_ARCH_LIST, default
#      the GPU's own compute capability);
#   2. the CUDA tests (CUDA kernels == C++ kernels, detector + losses on the GPU) beside the entropy,
#      loss, model and op tests;
#   3. benchmarks: scripts/benchmark_entropy.py --cuda, the detector forward batched vs unbatched
#      (scripts/benchmark_wrapper.py --forward-only), the BC step (scripts/benchmark_bc.py), and
#      detector training throughput on CUDA vs this machine's CPU (scripts/train_mint.py).
#
#     bash scripts/gpu_checks.sh [OUT_DIR] [TRAIN_DATA [EVAL_DATA]]
#
# The extension is built with the compiler in CC / CXX (nvcc's host compiler from CC), as torch's
# cpp_extension does. Build with the compiler torch itself was built with: on one GPU image here,
# CXX named a wrapper script around another g++ binary (same GCC 13.3 as torch), and that build
# crashed (segfault) whenever a C++ error message formatted a number (e.g. a bad region size);
# `CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++ bash scripts/gpu_checks.sh` fixed it.
# tests/test_entropy.py::test_kernel_entry_points_validate catches such a build.
#
# TRAIN_DATA / EVAL_DATA: clip directories (scripts/make_clevrer_like.py); default generated on
# the fly (needs pymunk). Each step runs even when an earlier one failed; the exit status is the
# number of failed steps. Everything is logged to OUT_DIR/gpu_checks.log (default out/gpu_checks);
# the entropy benchmark also writes OUT_DIR/benchmark_entropy.json; training runs write to a
# temporary directory.
set -u
OUT_DIR=${1:-out/gpu_checks}
TRAIN_DATA=${2:-generate:12:small}
EVAL_DATA=${3:-generate:3:small:100000}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"
LOG=$OUT_DIR/gpu_checks.log
WORK=$(mktemp -d)
: >"$LOG"
failed=0
step() {  # step NAME COMMAND...: run, append its output to LOG, print its tail and its time
  local name=$1
  shift
  local t0=$SECONDS
  echo "=== $name: $*" | tee -a "$LOG"
  "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  cat "$WORK/$name.log" >>"$LOG"
  tail -n "${TAIL:-12}" "$WORK/$name.log"
  echo "=== $name: rc=$rc, $((SECONDS - t0)) s" | tee -a "$LOG"
  [ $rc -eq 0 ] || failed=$((failed + 1))
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "cpu cores: $(nproc)"
  echo "compiler: CC=${CC:-cc} CXX=${CXX:-c++}: $(${CXX:-c++} --version | head -1)"
  $PY -c "import torch; print('torch built with:', [l.strip() for l in torch.__config__.show().splitlines() if 'GCC' in l or 'Clang' in l][:1])"
} 2>&1 | tee -a "$LOG"
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
  TORCH_CUDA_ARCH_LIST=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability(0))")
  export TORCH_CUDA_ARCH_LIST
fi
step build env MAX_JOBS=${MAX_JOBS:-8} $PY setup.py build_ext --inplace
step extension $PY -c "from mint_rl._ext import has_extension, has_cuda_kernels; import sys; print('extension', has_extension(), 'cuda kernels', has_cuda_kernels()); sys.exit(0 if has_cuda_kernels() else 1)"
TAIL=25 step tests $PY -m pytest -q -o addopts= -p no:cacheprovider -rs tests/test_entropy_cuda.py tests/test_entropy.py \
  tests/test_losses.py tests/test_models.py tests/test_ops.py
TAIL=20 step bench_entropy $PY scripts/benchmark_entropy.py --cuda --out "$OUT_DIR"
step bench_forward $PY scripts/benchmark_wrapper.py --device cuda --forward-only --num-envs 8
step bench_forward64 $PY scripts/benchmark_wrapper.py --device cuda --forward-only --num-envs 64
step bench_bc_cuda $PY scripts/benchmark_bc.py --device cuda
step bench_bc_cpu $PY scripts/benchmark_bc.py --device cpu
step train_cuda $PY scripts/train_mint.py --preset clevrer --data "$TRAIN_DATA" --eval-data "$EVAL_DATA" \
  --steps 300 --device cuda --no-progress --checkpoint-every 100000 --out "$WORK/train_cuda"
step train_cpu $PY scripts/train_mint.py --preset clevrer --data "$TRAIN_DATA" --eval-data "$EVAL_DATA" \
  --steps 20 --device cpu --no-progress --checkpoint-every 100000 --out "$WORK/train_cpu"
echo "gpu_checks: $failed step(s) failed" | tee -a "$LOG"
exit $failed
