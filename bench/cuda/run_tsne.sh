#!/usr/bin/env bash
# On the GPU machine: issue 5's timing. t-SNE of the 70,000 Fashion-MNIST images (784-d, raw
# pixels) with the CLI on the GPU (`--device cuda`: exact nearest neighbours and exact repulsion
# in neuroscope's kernels), twice (the first includes NVRTC compiling the kernels; the two outputs
# must be byte-identical), then on the machine's CPU cores for comparison. Each run prints its
# time, trustworthiness (k=10) and 5-NN accuracy. Needs the bundle and data of
#   TSNE_DATA=1 bash bench/cuda/build.sh
# Usage: bash bench/cuda/run_tsne.sh [BUNDLE_DIR] [DATA_DIR]; logs in $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/../.."
bundle=${1:-target-cuda/gpu-bundle}
data=${2:-target-cuda/gpu-data}
out=${OUT:-gpu-logs}; mkdir -p "$out"
work=$(mktemp -d)
xz -dc "$bundle/neuroscope.xz" > "$work/neuroscope" && chmod +x "$work/neuroscope"
for f in "$data"/*.npy.xz; do xz -dc "$f" > "$work/$(basename "$f" .xz)"; done
source bench/cuda/gpu-libs.sh
export NEUROSCOPE_QUIET=1
x=$work/fashion70k.npy; y=$work/fashion70k_labels.npy
status=0
{
  echo "commit: $(cat "$bundle/COMMIT" 2>/dev/null)"; date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "CPU cores: $(nproc)"
} | tee "$out/tsne-env.txt"
for run in 1 2; do
  echo "== GPU run $run" | tee -a "$out/tsne.log"
  t0=$(date +%s.%N)
  "$work/neuroscope" embed --method tsne --device cuda --input "$x" --labels "$y" --out "$work/gpu$run.npy" 2>&1 | tee -a "$out/tsne.log" || status=1
  echo "process wall $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s" | tee -a "$out/tsne.log"
done
cmp "$work/gpu1.npy" "$work/gpu2.npy" && echo "GPU runs 1 and 2: byte-identical" | tee -a "$out/tsne.log" || { echo "GPU runs differ" | tee -a "$out/tsne.log"; status=1; }
echo "== CPU, $(nproc) threads" | tee -a "$out/tsne.log"
"$work/neuroscope" embed --method tsne --device cpu --input "$x" --labels "$y" --out "$work/cpu.npy" 2>&1 | tee -a "$out/tsne.log" || status=1
exit $status
