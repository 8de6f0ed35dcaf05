#!/usr/bin/env bash
# Build the iovmm guest initramfs: build/images/guest-initramfs.cpio.gz
#
# Contents (newc, gzip, all mtimes 0, root-owned, built without root):
#   /init              the static guest-tests binary `iovmm-guest`
#   /bin/busybox       busybox-static, for debugging (/bin/sh links to it)
#   /dev/console       char 5,1 (the kernel opens it before running /init)
#   /dev/null          char 1,3
#   /proc /sys /tmp    empty mount points (the guest binary mounts devtmpfs on /dev)
# The runner appends a second archive with /expect.json (the scenario's expectations).
#
# The guest binary is built with
#   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p guest-tests \
#       --bin iovmm-guest --target x86_64-unknown-linux-gnu
# unless IOVMM_GUEST_BIN=PATH names a static binary to use instead.
# Same inputs give the same bytes. Not cached: packing takes well under a second,
# and cargo decides itself whether the binary needs rebuilding.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

target=x86_64-unknown-linux-gnu
out="$OUT_DIR/guest-initramfs.cpio.gz"
busybox=/bin/busybox

if [[ -n ${IOVMM_GUEST_BIN:-} ]]; then
    guest_bin="$(readlink -f "$IOVMM_GUEST_BIN")"
    log "initramfs: using IOVMM_GUEST_BIN=$guest_bin"
else
    log "initramfs: building iovmm-guest (static, $target)"
    (cd "$REPO_DIR" && RUSTFLAGS='-C target-feature=+crt-static' \
        cargo build --release -p guest-tests --bin iovmm-guest --target "$target")
    guest_bin="${CARGO_TARGET_DIR:-$REPO_DIR/target}/$target/release/iovmm-guest"
fi
require_static "$guest_bin"
require_static "$busybox"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Debug info is of no use inside the guest; keep the symbol table for backtraces.
strip --strip-debug -o "$work/init" "$guest_bin"
list="$work/list"
cat >"$list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /proc 0555 0 0
dir /sys 0555 0 0
dir /tmp 1777 0 0
dir /bin 0755 0 0
file /bin/busybox $busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $work/init 0755 0 0
EOF

pack_cpio "$list" "$out"
log "initramfs: $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16))"
