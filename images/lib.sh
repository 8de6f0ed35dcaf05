# Shared helpers for the images/ scripts. Source it; don't run it.
# shellcheck shell=bash disable=SC2034  # variables are for the sourcing scripts

log() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

IMAGES_DIR="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
REPO_DIR="$(dirname "$IMAGES_DIR")"
OUT_DIR="$REPO_DIR/build/images"
CACHE_ROOT="${IOVMM_CACHE:-$HOME/.cache/iovmm}"
KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz

# Fixed mtime for every archive member, so equal inputs give equal bytes.
CPIO_MTIME=0

# Version of the installed linux-source-6.12 package.
linux_source_version() {
    dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null \
        || die "linux-source-6.12 is not installed (run scripts/deps.sh)"
}

# Print the path of the kernel tree's usr/gen_init_cpio, building it from the
# linux-source-6.12 tarball on first use (cached per source version).
gen_init_cpio() {
    local version dir
    version="$(linux_source_version)"
    dir="$CACHE_ROOT/tools/$version"
    if [[ ! -x $dir/gen_init_cpio ]]; then
        log "building gen_init_cpio from $KERNEL_TARBALL" >&2
        mkdir -p "$dir"
        tar -xJf "$KERNEL_TARBALL" -C "$dir" --strip-components=2 \
            linux-source-6.12/usr/gen_init_cpio.c
        cc -O2 -o "$dir/gen_init_cpio.tmp" "$dir/gen_init_cpio.c"
        mv "$dir/gen_init_cpio.tmp" "$dir/gen_init_cpio"
    fi
    echo "$dir/gen_init_cpio"
}

# pack_cpio LIST OUT: write a gzip-compressed newc archive described by the
# gen_init_cpio list LIST (file/dir/nod/slink lines) to OUT, reproducibly
# (fixed mtimes and inode numbering, gzip -n without name/time).
pack_cpio() {
    local list=$1 out=$2 tool
    tool="$(gen_init_cpio)"
    mkdir -p "$(dirname "$out")"
    "$tool" -t "$CPIO_MTIME" "$list" | gzip -n -9 >"$out.tmp"
    mv "$out.tmp" "$out"
}

# require_static ELF: fail unless ELF is a statically linked executable.
require_static() {
    local elf=$1
    [[ -f $elf ]] || die "$elf not found"
    if readelf -l "$elf" 2>/dev/null | grep -q 'Requesting program interpreter'; then
        die "$elf is dynamically linked; it must be static"
    fi
}
