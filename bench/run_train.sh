#!/usr/bin/env bash
# One epoch of seed 3's MNIST CNN on CPU, neuroscope vs PyTorch, side by side in one run.
#   PYTHON=~/venvs/torch/bin/python bash bench/run_train.sh
# neuroscope trains on 9,999 embedded digits (one held out), PyTorch on 9,999 random images of
# the same shape (the time does not depend on the values); both batch 64, SGD lr 0.01, 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/.cache/neuroscope-ci/torch-venv/bin/python}
export RAYON_NUM_THREADS=2 THREADS=2 OMP_NUM_THREADS=2
cargo build --release --example train_mnist -q
torch=$("$PYTHON" bench/torch_train.py)
echo "$torch"
ours=$( { /usr/bin/time -f "%e" ./target/release/examples/train_mnist 0.0 1 1 2>/dev/null 1>/tmp/ns-train.out; } 2>&1 | tail -1 )
grep -o "([0-9.]* s" /tmp/ns-train.out | tr -d '( s' > /tmp/ns-train.s
ns=$(cat /tmp/ns-train.s)
echo "{\"peer\": \"neuroscope\", \"threads\": 2, \"samples\": 9999, \"seconds\": $ns}"
python3 -c "import json,sys; t=json.loads(sys.argv[1])['seconds']; print(f'ratio neuroscope/pytorch: {float(sys.argv[2])/t:.2f}')" "$torch" "$ns"
