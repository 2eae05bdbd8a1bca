#!/usr/bin/env bash
# Integrated gradients and occlusion on ResNet-50, neuroscope vs captum 0.9.0, side by side in one
# run, 2 threads each on the CPU; prints the CPU and the ratios.
#   PYTHON=~/.cache/neuroscope-ci/torch-venv/bin/python bash bench/run_attribution.sh
# OCC_BATCH=50 puts all 49 occluded images and the original through one pass on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/.cache/neuroscope-ci/torch-venv/bin/python}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} THREADS=${THREADS:-2} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no)"
cargo bench --bench attribution 2>/dev/null | grep '^{' | tee /tmp/ns_attribution.json
"$PYTHON" bench/torch_attribution.py 2>/dev/null | tee /tmp/captum_attribution.json
python3 - <<'PY'
import json
ns = {j["method"]: j for j in map(json.loads, open("/tmp/ns_attribution.json"))}
cp = {j["method"]: j for j in map(json.loads, open("/tmp/captum_attribution.json"))}
for m in ns:
    print(f"resnet50 {m}: neuroscope {ns[m]['seconds']:.2f} s, captum {cp[m]['seconds']:.2f} s, ratio {ns[m]['seconds'] / cp[m]['seconds']:.2f}")
PY
