#!/usr/bin/env bash
# Build every image iovmm's tests need: check the Debian packages, then the
# guest kernels (6.12 and 7.3, ours), Debian's own 6.12 and 7.3 kernels with
# their modules, Linux 7.3's VFIO selftests (when 7.3 is among the versions),
# the guest initramfs and the TCG test host. Each step caches its result, so a
# second run only re-packs the initramfs.
# Usage: images/build-all.sh [VERSION ...]   (default: every kernel version)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
start=$SECONDS

log "checking Debian packages"
"$REPO_DIR/scripts/deps.sh"
"$IMAGES_DIR/build-kernel.sh" "${@:-all}"
"$IMAGES_DIR/build-distro.sh" "${@:-all}"
# The upstream-vfio-* scenarios run Linux 7.3's own VFIO selftests: only for 7.3.
versions=("${@:-all}")
if [[ " ${versions[*]} " == *" all "* || " ${versions[*]} " == *" 7.3 "* ]]; then
    "$IMAGES_DIR/build-vfio-selftests.sh"
fi
"$IMAGES_DIR/build-initramfs.sh"
"$IMAGES_DIR/build-testhost.sh"

log "all images ready in $((SECONDS - start))s:"
for f in "$OUT_DIR"/bzImage-* "$OUT_DIR"/distro-*/vmlinuz "$OUT_DIR"/guest-initramfs.cpio.gz \
    "$OUT_DIR"/vfio-selftests.cpio.gz "$OUT_DIR"/testhost-vmlinuz "$OUT_DIR"/testhost-base.cpio.gz; do
    if [[ -e $f ]]; then
        log "  $f"
    fi
done
