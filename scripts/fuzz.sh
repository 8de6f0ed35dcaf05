#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS (default 15) each; any crash fails the run.
# cargo-fuzz needs nightly-only rustc flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
cd fuzz
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    echo "[fuzz] $target for ${seconds}s"
    cargo fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=0 2>&1 | tail -n 2
    # cargo fuzz exits non-zero (and prints the artifact path) on a crash; set -e stops us there.
done
echo "[fuzz] all targets ran ${seconds}s without a crash"
