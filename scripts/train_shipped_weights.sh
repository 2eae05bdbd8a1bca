#!/usr/bin/env bash
# Rebuilds neuroscope's shipped weights (weights/*.safetensors, `Weights::Trained`) byte for byte
# from the package registries' data, with neuroscope's own trainer, and compares them with the
# committed files (weights/*.sha256). The same bytes need an x86-64 CPU with AVX2 and FMA and
# the same C library (README, "Reproducibility").
#   bash scripts/train_shipped_weights.sh            # both; compare with weights/
#   bash scripts/train_shipped_weights.sh --write    # both; replace weights/ with the results
#   bash scripts/train_shipped_weights.sh mnist_cnn  # one
# Time on 2 cores (AMD EPYC, AVX-512): mnist_cnn 3 epochs ~50 s; fashion_cnn 5 epochs ~30 min.
set -euo pipefail
cd "$(dirname "$0")/.."
WRITE=0
ARCHS=()
for a in "$@"; do
  case "$a" in
    --write) WRITE=1 ;;
    *) ARCHS+=("$a") ;;
  esac
done
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(mnist_cnn fashion_cnn)
cargo build --release --features cli >/dev/null
BIN=target/release/neuroscope
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
status=0
for arch in "${ARCHS[@]}"; do
  # The command of each file is the one in src/models/trained.rs (its `command` field).
  case "$arch" in
    mnist_cnn)
      export NEUROSCOPE_CACHE; NEUROSCOPE_CACHE=$(bash scripts/fetch_mnist_full.sh)
      args=(--arch mnist_cnn --dataset mnist --epochs 3 --lr 0.01 --momentum 0.9 --batch-size 64 --seed 1) ;;
    fashion_cnn)
      export NEUROSCOPE_CACHE; NEUROSCOPE_CACHE=$(python3 scripts/fetch_fashion_68k.py)
      args=(--arch fashion_cnn --dataset fashion-mnist-68k --epochs 5 --lr 0.02 --momentum 0.9 --batch-size 64 --seed 1) ;;
    *) echo "no shipped weights for $arch (mnist_cnn, fashion_cnn)"; exit 2 ;;
  esac
  echo "== $arch: neuroscope train ${args[*]}"
  NEUROSCOPE_QUIET=1 "$BIN" train "${args[@]}" --out "$OUT/$arch.safetensors"
  got=$(sha256sum "$OUT/$arch.safetensors" | cut -d' ' -f1)
  want=$(cat "weights/$arch.sha256")
  if [ "$WRITE" = 1 ]; then
    cp "$OUT/$arch.safetensors" "weights/$arch.safetensors"
    printf %s "$got" > "weights/$arch.sha256"
    echo "wrote weights/$arch.safetensors ($got)"
  elif [ "$got" = "$want" ]; then
    echo "same bytes as weights/$arch.safetensors ($got)"
  else
    echo "DIFFERENT: $got, committed $want"; status=1
  fi
done
exit $status
