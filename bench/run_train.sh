#!/usr/bin/env bash
# One epoch of seed 3's MNIST CNN on CPU, neuroscope vs PyTorch, side by side in one run.
#   PYTHON=~/venvs/torch/bin/python bash bench/run_train.sh
# neuroscope trains on 9,999 embedded digits (one held out), PyTorch on 9,999 random images of
# the same shape (the time does not depend on the values); both batch 64, SGD lr 0.01, 2 threads.
#   FULL=1 bash bench/run_train.sh
# trains both on the real 60,000 MNIST training images (fetched by scripts/fetch_mnist_full.sh)
# and reports the test accuracy on the 10,000 test images and the evaluation time too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/.cache/neuroscope-ci/torch-venv/bin/python}
export RAYON_NUM_THREADS=2 THREADS=2 OMP_NUM_THREADS=2
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no)"
if [ "${FULL:-0}" = 1 ]; then
  cache=$(bash scripts/fetch_mnist_full.sh)
  torch=$(DATA=mnist-full MNIST_DIR="$cache/mnist" "$PYTHON" bench/torch_train.py)
  echo "$torch"
  ns_json=$(NEUROSCOPE_CACHE="$cache" FULL=1 cargo bench --bench train 2>/dev/null | grep '^{')
else
  torch=$("$PYTHON" bench/torch_train.py)
  echo "$torch"
  ns_json=$(cargo bench --bench train 2>/dev/null | grep '^{')
fi
echo "$ns_json"
ns=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['seconds'])" "$ns_json")
python3 -c "import json,sys; t=json.loads(sys.argv[1])['seconds']; print(f'ratio neuroscope/pytorch (training): {float(sys.argv[2])/t:.2f}')" "$torch" "$ns"
