#!/usr/bin/env bash
# Build the QEMU add-on of the TCG test host: Debian's qemu-system-x86_64 with the shared libraries and firmware
# it needs, so that a reference VMM (QEMU with KVM) runs on the same L1 KVM as iovmm, inside the same test host.
# The runner appends it to testhost-base.cpio.gz only for its `peer` runs (it is ~20 MB; scenarios do not need it).
#
# Output:  build/images/testhost-qemu.cpio.gz
#            /usr/bin/qemu-system-x86_64, every library `ldd` names (at its path, plus the ELF interpreter),
#            /usr/share/qemu/{bios-256k.bin,kvmvapic.bin,linuxboot_dma.bin} (SeaBIOS and the direct-kernel-boot
#            option ROM QEMU loads for -kernel)
# Cache:   ${IOVMM_CACHE:-$HOME/.cache/iovmm}/testhost-qemu/<key>/qemu.cpio.gz
#          key = first 16 hex digits of sha256 over (qemu-system-x86 and seabios package versions, this script,
#          lib.sh)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

qemu=/usr/bin/qemu-system-x86_64
FIRMWARE=(bios-256k.bin kvmvapic.bin linuxboot_dma.bin)
start=$SECONDS

[[ -x $qemu ]] || die "$qemu missing (run scripts/deps.sh: qemu-system-x86)"
versions=""
for pkg in qemu-system-x86 seabios; do
    v="$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null)" || die "$pkg is not installed (run scripts/deps.sh)"
    versions+="$pkg $v"$'\n'
done
key="$( { printf '%s' "$versions"; cat "${BASH_SOURCE[0]}" "$IMAGES_DIR/lib.sh"; } | sha256sum | cut -c1-16)"
cache_dir="$CACHE_ROOT/testhost-qemu/$key"

if [[ ! -f $cache_dir/qemu.cpio.gz ]]; then
    log "testhost-qemu: cache miss ($key), packing $qemu"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # Every library the dynamic loader resolves, and the loader itself.
    mapfile -t libs < <(ldd "$qemu" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u)
    ((${#libs[@]})) || die "ldd $qemu named no libraries"
    dirs=() files=()
    add_dirs() {
        local d=$1
        while [[ $d != / && $d != . ]]; do
            dirs+=("$d")
            d="$(dirname "$d")"
        done
    }
    for lib in "${libs[@]}"; do
        [[ -e $lib ]] || die "library $lib (from ldd $qemu) missing"
        add_dirs "$(dirname "$lib")"
        files+=("file $lib $(readlink -f "$lib") 0755 0 0")
    done
    add_dirs /usr/bin
    files+=("file $qemu $qemu 0755 0 0")
    add_dirs /usr/share/qemu
    for fw in "${FIRMWARE[@]}"; do
        src=""
        for d in /usr/share/qemu /usr/share/seabios; do
            [[ -e $d/$fw ]] && { src="$(readlink -f "$d/$fw")"; break; }
        done
        [[ -n $src ]] || die "firmware $fw not found in /usr/share/qemu or /usr/share/seabios"
        files+=("file /usr/share/qemu/$fw $src 0644 0 0")
    done
    {
        printf '%s\n' "${dirs[@]}" | sort -u | awk '{ print "dir " $0 " 0755 0 0" }'
        printf '%s\n' "${files[@]}"
    } >"$work/list"
    mkdir -p "$CACHE_ROOT/testhost-qemu"
    tmp_dir="$(mktemp -d "$CACHE_ROOT/testhost-qemu/.tmp.XXXXXX")"
    pack_cpio "$work/list" "$tmp_dir/qemu.cpio.gz"
    rm -rf "$cache_dir"
    mv "$tmp_dir" "$cache_dir"
    log "testhost-qemu: ${#libs[@]} libraries, ${#FIRMWARE[@]} firmware files, $(stat -c %s "$cache_dir/qemu.cpio.gz") bytes ($((SECONDS - start))s)"
else
    log "testhost-qemu: cache hit ($key)"
fi
mkdir -p "$OUT_DIR"
cp -f "$cache_dir/qemu.cpio.gz" "$OUT_DIR/testhost-qemu.cpio.gz"
log "testhost-qemu: $OUT_DIR/testhost-qemu.cpio.gz"
