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
cargo build --release --example train_mnist -q
if [ "${FULL:-0}" = 1 ]; then
  cache=$(bash scripts/fetch_mnist_full.sh)
  torch=$(DATA=mnist-full MNIST_DIR="$cache/mnist" "$PYTHON" bench/torch_train.py)
  echo "$torch"
  NEUROSCOPE_CACHE="$cache" ./target/release/examples/train_mnist 0.0 1 0 full 2>/dev/null >/tmp/ns-train.out
  ns=$(grep -o "([0-9.]* s," /tmp/ns-train.out | tr -d '( s,')
  acc=$(grep -o "test accuracy [0-9.]*" /tmp/ns-train.out | cut -d' ' -f3)
  ev=$(grep -o "([0-9.]* s)" /tmp/ns-train.out | tr -d '( s)')
  echo "{\"peer\": \"neuroscope\", \"threads\": 2, \"samples\": 60000, \"seconds\": $ns, \"eval_seconds\": $ev, \"test_accuracy\": $acc}"
else
  torch=$("$PYTHON" bench/torch_train.py)
  echo "$torch"
  ./target/release/examples/train_mnist 0.0 1 1 2>/dev/null 1>/tmp/ns-train.out
  ns=$(grep -o "([0-9.]* s" /tmp/ns-train.out | tr -d '( s')
  echo "{\"peer\": \"neuroscope\", \"threads\": 2, \"samples\": 9999, \"seconds\": $ns}"
fi
python3 -c "import json,sys; t=json.loads(sys.argv[1])['seconds']; print(f'ratio neuroscope/pytorch (training): {float(sys.argv[2])/t:.2f}')" "$torch" "$ns"
