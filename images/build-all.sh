#!/usr/bin/env bash
# Build every image iovmm's tests need: check the Debian packages, then the
# guest kernel, the guest initramfs and the TCG test host. Each step caches
# its result, so a second run only re-packs the initramfs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
start=$SECONDS

log "checking Debian packages"
"$REPO_DIR/scripts/deps.sh"
"$IMAGES_DIR/build-kernel.sh"
"$IMAGES_DIR/build-initramfs.sh"
"$IMAGES_DIR/build-testhost.sh"

log "all images ready in $((SECONDS - start))s:"
for f in bzImage guest-kernel.config guest-initramfs.cpio.gz testhost-vmlinuz testhost-base.cpio.gz; do
    log "  $OUT_DIR/$f"
done
