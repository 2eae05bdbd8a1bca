#!/usr/bin/env bash
# Side-by-side: neuroscope vs torchvision loading + transforming 10,000 MNIST digits to
# 3x224x224 tensors, in one run on this machine. Usage:
#   PYTHON=~/venvs/torch/bin/python bash bench/run_load_transform.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export REPEATS=${REPEATS:-3} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} THREADS=${THREADS:-2}
cargo bench --bench load_transform 2>/dev/null | tee /tmp/ns_load.json
"$PYTHON" bench/torchvision_load.py | tee /tmp/tv_load.json
python3 - <<'PY'
import json
ns = json.loads(open("/tmp/ns_load.json").read().strip().splitlines()[-1])
for line in open("/tmp/tv_load.json"):
    tv = json.loads(line)
    print(f"ratio neuroscope / {tv['impl']}: {ns['best_s'] / tv['best_s']:.2f}  ({ns['best_s']:.3f} s vs {tv['best_s']:.3f} s)")
PY
