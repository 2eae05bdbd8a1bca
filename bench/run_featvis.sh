#!/usr/bin/env bash
# Seed 5's activation maximisation, neuroscope vs PyTorch, side by side in one run:
# milliseconds per Adam iteration for ResNet-50 `layer2.0.conv3` channel 0 at 128 px and
# AlexNet `features.10` channel 0 at 224 px, 2 threads each on the CPU.
#   PYTHON=~/.cache/neuroscope-ci/torch-venv/bin/python bash bench/run_featvis.sh
# DEVICE=cuda runs both on the GPU (build with --features cuda; see bench/cuda/).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/.cache/neuroscope-ci/torch-venv/bin/python}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} THREADS=${THREADS:-2} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
FEATURES=""
if [ "${DEVICE:-cpu}" = cuda ]; then FEATURES="--features cuda"; fi
cargo bench --bench featvis $FEATURES 2>/dev/null | grep '^{' | tee /tmp/ns_featvis.json
"$PYTHON" bench/torch_featvis.py | tee /tmp/torch_featvis.json
python3 - <<'PY'
import json
ns = [json.loads(l) for l in open("/tmp/ns_featvis.json")]
tv = [json.loads(l) for l in open("/tmp/torch_featvis.json")]
for a in ns:
    for b in tv:
        if b["arch"] == a["arch"]:
            print(f"{a['arch']} {a['layer']} @{a['px']}px: neuroscope {a['ms_per_iter']:.1f} ms/iter, "
                  f"pytorch ({b['way']}) {b['ms_per_iter']:.1f} ms/iter, ratio {a['ms_per_iter'] / b['ms_per_iter']:.2f}")
PY
