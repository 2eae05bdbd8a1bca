#!/usr/bin/env bash
# Type-checks the `metal` feature for Apple silicon from Linux (issue 10): the library, the CLI,
# the tests, benches and examples against candle's Metal backend, without a Mac. `cargo check`
# compiles no C and links nothing, so no Apple SDK is needed; `download` is left out because
# ring's C build would need it. Running on an Apple GPU is not covered.
#   bash scripts/check_metal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-apple-darwin
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  if ! rustup target add "$TARGET"; then
    echo "SKIPPED: could not install the $TARGET standard library (no rustup or no network)"
    exit 0
  fi
fi
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/metal-check} \
  cargo check --target "$TARGET" --features metal,cli --all-targets
echo "metal feature: type-checks for $TARGET"
