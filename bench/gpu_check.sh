#!/usr/bin/env bash
# One prepared run on a CUDA GPU (H100/H200) for issue 11, under ~8 minutes; everything goes to $OUT.
#
#   bash bench/gpu_check.sh            # from the repository root; OUT defaults to ./gpu_out
#
# It needs numpy, cuda-bindings and the NVRTC wheel (the GPU image has them, with PyTorch and CuPy) and
# this project's pure-Python dependencies. A machine with no network gets those from a folder carried
# along with the work tree, prepared beforehand on a machine with PyPI:
#   pip install --no-deps --target .gpu_deps networkx rich markdown-it-py mdurl pygments nvidia-ml-py \
#       pytest pluggy iniconfig packaging
# Steps (each with its own time limit, so one hang cannot eat the rest):
#   1. env.txt        nvidia-smi, the Python packages found, `workbench doctor`
#   2. pytest_gpu.txt the gpu-marked tests on CUDA: the kernel corpus vs REF, every GEMM tile, WB_SEARCH
#   3. bench_gpu.*    GEMM vs cuBLAS (fp16 tensor cores, fp32) at 4096 and 8192; GPT-2-small block vs
#                     PyTorch eager and tinygrad CUDA (where installed)
#   4. measure_*.json `workbench measure gemm:8192x8192x8192 --device CUDA` (fp16 and fp32): TFLOPS, W
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
mkdir -p "$OUT"
if [ -d .gpu_deps ]; then export PYTHONPATH="$PWD:$PWD/.gpu_deps${PYTHONPATH:+:$PYTHONPATH}"; else export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; fi
export WB_CACHE_DIR="${WB_CACHE_DIR:-/tmp/wb-gpu-cache}"
PY="${PYTHON:-python}"
start=$(date +%s)
step() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$OUT/steps.txt"; }

step "1 environment"
{
  nvidia-smi || true
  "$PY" - <<'PYEOF'
import importlib
for mod in ("numpy", "networkx", "rich", "pytest", "cuda.bindings", "pynvml", "torch", "cupy", "tinygrad"):
    try:
        m = importlib.import_module(mod)
        print(f"{mod}: {getattr(m, '__version__', 'present')}")
    except Exception as e:
        print(f"{mod}: MISSING ({type(e).__name__}: {e})")
from compiler.nvrtc import nvrtc_version
print("nvrtc:", nvrtc_version())
PYEOF
  timeout 60 "$PY" -m workbench doctor || true
} > "$OUT/env.txt" 2>&1
tail -5 "$OUT/env.txt"

step "2 gpu tests"
timeout 240 "$PY" -m pytest -q -rs -x -p no:cacheprovider tests/test_gpu_cuda.py > "$OUT/pytest_gpu.txt" 2>&1
echo "pytest exit $?" >> "$OUT/pytest_gpu.txt"; tail -3 "$OUT/pytest_gpu.txt"

step "3 bench vs cuBLAS / PyTorch eager / tinygrad"
timeout 240 "$PY" -m bench.gpu --out "$OUT/bench_gpu.json" > "$OUT/bench_gpu.txt" 2>&1
echo "bench exit $?" >> "$OUT/bench_gpu.txt"; tail -4 "$OUT/bench_gpu.txt"

step "4 workbench measure gemm:8192x8192x8192"
for dt in float16 float32; do
  timeout 60 "$PY" -m workbench measure gemm:8192x8192x8192 --device CUDA --dtype "$dt" \
      --out "$OUT/measure_$dt.json" > "$OUT/measure_$dt.txt" 2>&1
  echo "measure exit $?" >> "$OUT/measure_$dt.txt"; tail -2 "$OUT/measure_$dt.txt"
done
step "done"
