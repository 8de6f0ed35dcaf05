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

# --- Guest kernel versions ------------------------------------------------------
# The guest kernels images/ knows: Linux 6.12 LTS from Debian 12's linux-source-6.12 (installed by
# scripts/deps.sh, tarball in /usr/src) and Linux 7.3 from Debian 13 trixie-backports' linux-source-7.3
# (fetched with `apt-get download`, never installed; scripts/deps.sh adds that apt source).
KERNEL_VERSIONS=(6.12 7.3)
DEFAULT_KERNEL_VERSION=6.12

# check_kernel_version V: fail with one line unless images/ knows V.
check_kernel_version() {
    local v
    for v in "${KERNEL_VERSIONS[@]}"; do
        [[ $1 == "$v" ]] && return 0
    done
    die "unknown kernel version '$1' (known: ${KERNEL_VERSIONS[*]})"
}

# fetch_deb PKG [VERSION]: print the path of PKG's .deb in the cache (${CACHE_ROOT}/debs), downloading it with
# `apt-get download` on first use (at VERSION, else the candidate apt-cache knows). A half-downloaded file never
# stays in the cache: apt-get writes into a scratch directory, the .deb is moved in whole.
fetch_deb() {
    local pkg=$1 want=${2:-} dir="$CACHE_ROOT/debs" f tmp
    if [[ -z $want ]]; then
        want="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        [[ -n $want && $want != "(none)" ]] \
            || die "no package $pkg in the apt sources (run scripts/deps.sh as root: it adds trixie-backports and runs apt-get update)"
    fi
    mkdir -p "$dir"
    for f in "$dir/${pkg}"_*.deb; do
        [[ -f $f && "$(dpkg-deb -f "$f" Version)" == "$want" ]] && { echo "$f"; return 0; }
    done
    apt-cache show "$pkg=$want" >/dev/null 2>&1 \
        || die "no package $pkg=$want in the apt sources (run scripts/deps.sh as root, then retry)"
    log "downloading $pkg=$want" >&2
    tmp="$(mktemp -d "$dir/.tmp.XXXXXX")"
    if ! (cd "$tmp" && apt-get download "$pkg=$want" >/dev/null 2>&1); then
        rm -rf "$tmp"
        die "apt-get download $pkg=$want failed"
    fi
    for f in "$tmp/${pkg}"_*.deb; do
        [[ -f $f ]] || continue
        mv "$f" "$dir/"
        rm -rf "$tmp"
        echo "$dir/$(basename "$f")"
        return 0
    done
    rm -rf "$tmp"
    die "apt-get download $pkg=$want produced no .deb"
}

# kernel_source_version V: the Debian package version of linux-source-V.
kernel_source_version() {
    check_kernel_version "$1"
    if [[ $1 == 6.12 ]]; then
        linux_source_version
    else
        dpkg-deb -f "$(fetch_deb "linux-source-$1")" Version
    fi
}

# extract_kernel_source V DIR: unpack linux-source-V's tarball into DIR (top directory stripped).
extract_kernel_source() {
    local v=$1 dir=$2 deb
    check_kernel_version "$v"
    if [[ $v == 6.12 ]]; then
        [[ -f $KERNEL_TARBALL ]] || die "$KERNEL_TARBALL missing (reinstall linux-source-6.12)"
        tar -xJf "$KERNEL_TARBALL" -C "$dir" --strip-components=1
    else
        deb="$(fetch_deb "linux-source-$v")"
        dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-$v.tar.xz" \
            | tar -xJ -C "$dir" --strip-components=1
    fi
}

# fragment_for V FRAGMENT: print FRAGMENT as Kconfig reads it for kernel V. A line `V: CONFIG_X=y` counts only
# for kernel V (the prefix is stripped); every other line counts for all.
fragment_for() {
    local v=$1 fragment=$2
    awk -v v="$v" '
        match($0, /^[0-9]+\.[0-9]+: /) {
            if (substr($0, 1, RLENGTH - 2) == v) print substr($0, RLENGTH + 1)
            next
        }
        { print }' "$fragment"
}
