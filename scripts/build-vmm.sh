#!/usr/bin/env bash
# Builds the static iovmm (runs on the host and inside the TCG test host) and the guest-tests runner.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "[build] iovmm (static) and iovmm-runner"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked -p vmm --bin iovmm \
    --target x86_64-unknown-linux-gnu
cargo build --release --locked -p guest-tests --bin iovmm-runner
