#!/usr/bin/env bash
# On the GPU machine (no Rust, no network; PyTorch in /opt/torch/.venv): unpack the binaries that
# bench/cuda/build.sh made, and run
#   1. tests/cuda.rs (every layer of 9 architectures, the recorder, input gradients: CUDA vs CPU)
#      with NEUROSCOPE_REQUIRE_CUDA=1, so a missing GPU fails instead of skipping;
#   2. tests/parity.rs on the GPU against PyTorch references made here by
#      scripts/make_parity_fixtures.py (PARITY_ARCHS);
#   3. the recording benchmark on the GPU, neuroscope then PyTorch (bench/torch_record.py), same
#      images, batch and layers.
# Logs go to $OUT (or ./gpu-logs). Usage: bash bench/cuda/run.sh [BUNDLE_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
bundle=${1:-target-cuda/gpu-bundle}
out=${OUT:-gpu-logs}; mkdir -p "$out"
PY=${PY:-/opt/torch/.venv/bin/python}
work=$(mktemp -d)
for f in "$bundle"/*.xz; do xz -dc "$f" > "$work/$(basename "$f" .xz)"; chmod +x "$work/$(basename "$f" .xz)"; done
source bench/cuda/gpu-libs.sh
{
  echo "commit: $(cat "$bundle/COMMIT" 2>/dev/null)"
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda)'
} | tee "$out/env.txt"

status=0
# first-use cost: the driver compiles candle's PTX (compute_90) to machine code on first use and
# caches it in ~/.nv/ComputeCache (CUDA_CACHE_PATH); the same small test cold, then warm
for run in cold warm; do
  t0=$(date +%s.%N)
  NEUROSCOPE_REQUIRE_CUDA=1 "$work/cuda" --exact mnist_cnn > /dev/null 2>&1 || status=1
  echo "first-use probe ($run cache): $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s" | tee -a "$out/env.txt"
done
du -sh ~/.nv/ComputeCache 2>/dev/null | tee -a "$out/env.txt"
echo "== tests/cuda.rs" | tee "$out/cuda-tests.log"
t0=$(date +%s.%N)
NEUROSCOPE_REQUIRE_CUDA=1 "$work/cuda" --test-threads=1 --nocapture >> "$out/cuda-tests.log" 2>&1 || status=1
echo "wall $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s (kernel cache warm)" | tee -a "$out/cuda-tests.log"
tail -3 "$out/cuda-tests.log"

PARITY_ARCHS=${PARITY_ARCHS:-mnist_cnn cifar_cnn alexnet vgg16 resnet50 googlenet mobilenet_v2}
pdir=$work/fixtures
echo "== fixtures for: $PARITY_ARCHS" | tee "$out/parity-tests.log"
"$PY" scripts/make_parity_fixtures.py --out "$pdir" --arch $PARITY_ARCHS >> "$out/parity-tests.log" 2>&1 || status=1
filter=""
for a in $PARITY_ARCHS; do filter="$filter $a"; done
NEUROSCOPE_TEST_DEVICE=cuda NEUROSCOPE_REQUIRE_PARITY=1 NEUROSCOPE_PARITY_DIR="$pdir" \
  "$work/parity" --test-threads=1 --nocapture --exact $filter >> "$out/parity-tests.log" 2>&1 || status=1
grep -E "outputs match|test result|FAILED|panicked" "$out/parity-tests.log"

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  export DEVICE=cuda N=${N:-1024} BATCH=${BATCH:-256} REPEATS=${REPEATS:-3}
  export NETS=${NETS:-alexnet:features,resnet50:layer4,vgg16:features}
  "$work/record" > "$out/record-neuroscope.jsonl" 2> "$out/record-neuroscope.err" || status=1
  THREADS=16 "$PY" bench/torch_record.py > "$out/record-torch.jsonl" 2> "$out/record-torch.err" || status=1
  # the same with the images already on the GPU (how the issue's PyTorch numbers were taken)
  INPUT_ON_DEVICE=1 "$work/record" > "$out/record-ondevice-neuroscope.jsonl" 2>> "$out/record-neuroscope.err" || status=1
  INPUT_ON_DEVICE=1 THREADS=16 "$PY" bench/torch_record.py > "$out/record-ondevice-torch.jsonl" 2>> "$out/record-torch.err" || status=1
  cat "$out"/record-*.err "$out"/record-*.jsonl
fi
exit $status
