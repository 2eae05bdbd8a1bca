#!/usr/bin/env bash
# Side-by-side: neuroscope vs PyTorch (forward hook) recording AlexNet `features` and
# ResNet-50 `layer4` for 256 images at 224x224 on the CPU, 2 threads each. Usage:
#   PYTHON=~/venvs/torch/bin/python bash bench/run_record.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export REPEATS=${REPEATS:-2} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} THREADS=${THREADS:-2}
cargo bench --bench record 2>/dev/null | tee /tmp/ns_record.json
"$PYTHON" bench/torch_record.py | tee /tmp/torch_record.json
python3 - <<'PY'
import json
ns = [json.loads(l) for l in open("/tmp/ns_record.json") if l.startswith("{")]
tv = [json.loads(l) for l in open("/tmp/torch_record.json") if l.startswith("{")]
for a, b in zip(ns, tv):
    print(f"{a['arch']} {a['layer']}: neuroscope {a['best_s']:.2f} s, torch {b['best_s']:.2f} s, ratio {a['best_s'] / b['best_s']:.2f}")
PY
