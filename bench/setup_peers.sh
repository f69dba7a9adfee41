#!/usr/bin/env bash
# Make the peers' own virtual environments in the checkout (.venv-tinygrad, .venv-scalesim), so the
# benchmarks can run tinygrad 0.14 and SCALE-Sim 3.0 without touching the project's environment.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
"$python" -m venv "$repo/.venv-tinygrad"
"$repo/.venv-tinygrad/bin/pip" install --quiet tinygrad==0.14.0 numpy pyopencl pocl-binary-distribution
"$python" -m venv "$repo/.venv-scalesim"
"$repo/.venv-scalesim/bin/pip" install --quiet scalesim==3.0.0 "numpy<2.4"
command -v clang >/dev/null || command -v clang-15 >/dev/null || \
  echo "note: tinygrad's CPU helpers need clang (e.g. apt-get install clang-15)" >&2
echo "peers ready: $repo/.venv-tinygrad, $repo/.venv-scalesim"
