#!/usr/bin/env bash
# One prepared run on a CUDA GPU (H100/H200), under ~7 minutes; everything goes to $OUT as log.txt and results.tgz.
#
#   bash bench/gpu_check.sh            # from the repository root; OUT defaults to ./gpu_out
#   STEPS="2 4" bash bench/gpu_check.sh   # only some steps (1 always runs)
#
# It needs numpy, cuda-bindings, the NVRTC wheel, nvidia-ml-py and this project's pure-Python dependencies
# (a GPU image with PyTorch has them). A machine with no network installs wheels from ./.whl when that folder
# exists, prepared beforehand on a machine with PyPI (tinygrad for the peer column, pyopencl for OpenCL on
# the GPU; see docs/gpu.md).
# Steps (each with its own time limit, so one hang cannot eat the rest):
#   1. environment: nvidia-smi, the Python packages found, `workbench doctor`
#   2. the gpu-marked tests on CUDA (kernel corpus vs REF, every GEMM tile, WB_SEARCH) and the Tensor API,
#      numerics and differential tests with CUDA as their device
#   3. bench/gpu.py: GEMM vs cuBLAS (fp16, bf16, fp32) at 4096 and 8192; GPT-2-small block vs PyTorch eager
#      and tinygrad CUDA
#   4. `workbench measure gemm:8192x8192x8192 --device CUDA` (fp16 and fp32): TFLOPS and TFLOPS/W
#   5. bench/gpu_gemm_shapes.py: cuBLAS on every H100 shape of workbench/measured_gemm.csv, with SM clocks
#   6. OpenCL on the GPU (pyopencl with the NVIDIA ICD), when the driver has one: the kernel corpus on CL
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
RAW="$OUT/raw"
mkdir -p "$RAW"
STEPS="${STEPS:-2 3 4 5 6}"
PY="${PYTHON:-python3}"
SITE=/tmp/wb-gpu-site
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    > "$RAW/wheels.txt" 2>&1 || echo "wheel install failed (see raw/wheels.txt)"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$SITE" ] && export PYTHONPATH="$PYTHONPATH:$SITE"
export WB_CACHE_DIR="${WB_CACHE_DIR:-/tmp/wb-gpu-cache}" PYTHONUNBUFFERED=1
start=$(date +%s)
step() { echo "[$(( $(date +%s) - start ))s] $*"; }
want() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
finish() {
  step "done"
  tar -czf "$OUT/results.tgz" -C "$OUT" raw 2>/dev/null
}
trap finish EXIT
trap "exit 143" TERM INT

step "1 environment"
{
  nvidia-smi || true
  "$PY" - <<'PYEOF'
import importlib
for mod in ("numpy", "networkx", "rich", "pytest", "hypothesis", "ml_dtypes", "cuda.bindings", "pynvml", "torch",
            "cupy", "tinygrad", "pyopencl"):
    try:
        m = importlib.import_module(mod)
        print(f"{mod}: {getattr(m, '__version__', 'present')}")
    except Exception as e:
        print(f"{mod}: MISSING ({type(e).__name__}: {e})")
from compiler.nvrtc import nvrtc_version
print("nvrtc:", nvrtc_version())
from compiler.device import available, describe
print("devices:", available(), "| CUDA:", describe("CUDA"))
PYEOF
  timeout 30 "$PY" -m workbench doctor || true
} > "$RAW/env.txt" 2>&1
grep -E "H100|H200|Driver Version|nvrtc:|devices:|MISSING" "$RAW/env.txt" | head -12

if want 2; then
  step "2 gpu tests + Tensor/numerics/differential on CUDA"
  timeout 170 "$PY" -m pytest -q -rfs -p no:cacheprovider -n 8 --maxfail=40 \
      tests/test_gpu_cuda.py tests/test_compiler_tensor.py tests/test_compiler_numerics.py \
      tests/test_compiler_differential.py -k "cuda or tensor_cores or bad_launch" > "$RAW/pytest_gpu.txt" 2>&1
  echo "pytest exit $?" >> "$RAW/pytest_gpu.txt"
  grep -E "^(FAILED|ERROR)|passed|failed|pytest exit" "$RAW/pytest_gpu.txt" | head -45
fi

if want 3; then
  step "3 bench vs cuBLAS / PyTorch eager / tinygrad"
  timeout 150 "$PY" -m bench.gpu --reps 10 --candidates --out "$RAW/bench_gpu.json" > "$RAW/bench_gpu.txt" 2>&1
  echo "bench exit $?" >> "$RAW/bench_gpu.txt"
  cut -c1-300 "$RAW/bench_gpu.txt" | tail -30
fi

if want 4; then
  step "4 workbench measure gemm:8192x8192x8192"
  for dt in float16 float32; do
    timeout 40 "$PY" -m workbench measure gemm:8192x8192x8192 --device CUDA --dtype "$dt" \
        --out "$RAW/measure_$dt.json" > "$RAW/measure_$dt.txt" 2>&1
    echo "measure exit $?" >> "$RAW/measure_$dt.txt"; tail -4 "$RAW/measure_$dt.txt"
  done
fi

if want 5; then
  step "5 cuBLAS on the measured_gemm.csv H100 shapes"
  timeout 80 "$PY" -m bench.gpu_gemm_shapes --chip h100-sxm --budget 0.1 --out "$RAW/shapes.json" \
      --csv "$RAW/shapes.csv" > "$RAW/shapes.txt" 2>&1
  echo "shapes exit $?" >> "$RAW/shapes.txt"; tail -3 "$RAW/shapes.txt"
fi

if want 6; then
  step "6 OpenCL on the GPU"
  icd=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl.so/{print $NF; exit}')
  [ -z "$icd" ] && icd=$(ls /usr/local/nvidia/lib64/libnvidia-opencl.so* /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so* 2>/dev/null | head -1)
  if [ -n "$icd" ]; then
    mkdir -p /tmp/wb-icd && echo "$icd" > /tmp/wb-icd/nvidia.icd
    export OCL_ICD_VENDORS=/tmp/wb-icd
    timeout 50 "$PY" - > "$RAW/opencl_gpu.txt" 2>&1 <<'PYEOF'
import numpy as np
from compiler.device import describe
from compiler.kernel_corpus import CORPUS, build, inputs
print("CL is", describe("CL"))
bad = 0
for name in CORPUS:
    arrs = inputs(name)
    try:
        got, ref = build(name, "CL", arrs).numpy(), build(name, "REF", arrs).numpy()
        tol = 2e-2 if "f16" in name or "half" in name else 1e-4
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol)
    except Exception as e:
        bad += 1
        print(f"FAILED {name}: {type(e).__name__}: {str(e)[:300]}")
print(f"OpenCL GPU corpus: {len(CORPUS) - bad}/{len(CORPUS)} agree with REF")
PYEOF
    timeout 40 "$PY" -m pytest -q -rfs -p no:cacheprovider -n 8 --maxfail=20 tests/test_compiler_tensor.py \
        tests/test_compiler_numerics.py -k "CL" >> "$RAW/opencl_gpu.txt" 2>&1
    echo "opencl exit $? (ICD $icd)" >> "$RAW/opencl_gpu.txt"; tail -3 "$RAW/opencl_gpu.txt"
  else
    echo "no libnvidia-opencl in this driver install: OpenCL on the GPU not tried" | tee "$RAW/opencl_gpu.txt"
  fi
fi
