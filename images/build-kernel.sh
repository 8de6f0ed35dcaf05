#!/usr/bin/env bash
# Build the iovmm guest kernel (bzImage) from Debian's linux-source-6.12 with
# images/guest-kernel.fragment.
#
# Output:  build/images/bzImage and build/images/guest-kernel.config
# Cache:   ${IOVMM_CACHE:-$HOME/.cache/iovmm}/kernel/<key>/{bzImage,config}
#          key = first 16 hex digits of sha256 over
#                (linux-source-6.12 package version, fragment, this script).
#          On a hit nothing is built; the cached kernel is copied to build/.
# Work:    ${IOVMM_CACHE}/kernel-src/<version>/    extracted tarball (kept)
#          ${IOVMM_CACHE}/kernel-build/<version>/  make O= directory (kept, so a
#                                                  fragment change rebuilds
#                                                  incrementally)
# Env:     IOVMM_CACHE, IOVMM_VERBOSE=1 (show the full make output),
#          IOVMM_JOBS (default: nproc).
set -euo pipefail

log() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

script_path="$(readlink -f "${BASH_SOURCE[0]}")"
images_dir="$(dirname "$script_path")"
repo_dir="$(dirname "$images_dir")"
fragment="$images_dir/guest-kernel.fragment"
out_dir="$repo_dir/build/images"
cache_root="${IOVMM_CACHE:-$HOME/.cache/iovmm}"
tarball=/usr/src/linux-source-6.12.tar.xz
jobs="${IOVMM_JOBS:-$(nproc)}"
start=$SECONDS

src_version="$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null)" \
    || die "linux-source-6.12 is not installed (run scripts/deps.sh)"
[[ -f $tarball ]] || die "$tarball missing (reinstall linux-source-6.12)"

key="$( { printf 'linux-source-6.12 %s\n' "$src_version"; cat "$fragment" "$script_path"; } \
        | sha256sum | cut -c1-16)"
cache_dir="$cache_root/kernel/$key"

install_outputs() {
    mkdir -p "$out_dir"
    cp -f "$cache_dir/bzImage" "$out_dir/bzImage"
    cp -f "$cache_dir/config" "$out_dir/guest-kernel.config"
}

if [[ -f $cache_dir/bzImage && -f $cache_dir/config ]]; then
    log "kernel: cache hit ($key): $cache_dir/bzImage"
    install_outputs
    exit 0
fi

log "kernel: cache miss ($key), building linux-source-6.12 $src_version"
mkdir -p "$cache_root"

# One kernel build at a time per cache (the source and build dirs are shared).
exec 9>"$cache_root/kernel.lock"
if ! flock -n 9; then
    log "kernel: waiting for another kernel build to finish"
    flock 9
fi
if [[ -f $cache_dir/bzImage && -f $cache_dir/config ]]; then
    log "kernel: built meanwhile by another run: $cache_dir/bzImage"
    install_outputs
    exit 0
fi

src_dir="$cache_root/kernel-src/$src_version"
build_dir="$cache_root/kernel-build/$src_version"

if [[ ! -f $src_dir/.extracted ]]; then
    log "kernel: extracting $tarball to $src_dir"
    rm -rf "$src_dir"
    mkdir -p "$src_dir"
    tar -xJf "$tarball" -C "$src_dir" --strip-components=1
    touch "$src_dir/.extracted"
fi

mkdir -p "$build_dir"
log "kernel: configuring (allnoconfig + fragment)"
make -s -C "$src_dir" O="$build_dir" ARCH=x86_64 \
    KCONFIG_ALLCONFIG="$fragment" allnoconfig >/dev/null

# Every option the fragment sets must survive Kconfig's dependency resolution.
dropped=()
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        grep -qxF -- "$line" "$build_dir/.config" \
            || dropped+=("$line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$build_dir/.config" || echo unset))")
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
        ! grep -qE "^${BASH_REMATCH[1]}=" "$build_dir/.config" \
            || dropped+=("$line (got: $(grep -E "^${BASH_REMATCH[1]}=" "$build_dir/.config"))")
    fi
done <"$fragment"
if ((${#dropped[@]})); then
    printf '[images] error: Kconfig did not honour these fragment lines (missing dependencies?):\n' >&2
    printf '[images]   %s\n' "${dropped[@]}" >&2
    exit 1
fi
log "kernel: all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set)' "$fragment") fragment options present in .config"

# Fixed build identity (uname -v) instead of user, host, date and a counter.
export KBUILD_BUILD_USER=iovmm KBUILD_BUILD_HOST=iovmm KBUILD_BUILD_VERSION=1 \
    KBUILD_BUILD_TIMESTAMP="linux-source-6.12 $src_version"

log "kernel: make -j$jobs bzImage (log: $build_dir/build.log)"
set +e
if [[ ${IOVMM_VERBOSE:-0} == 1 ]]; then
    make -C "$src_dir" O="$build_dir" ARCH=x86_64 -j"$jobs" bzImage 2>&1 | tee "$build_dir/build.log"
else
    make -C "$src_dir" O="$build_dir" ARCH=x86_64 -j"$jobs" bzImage 2>&1 | tee "$build_dir/build.log" \
        | awk -v t0="$start" '
            /^  CC / { n++; if (n % 250 == 0) { printf "[images] kernel: %d files compiled\n", n; fflush() } }
            /^  LD  *vmlinux$/ { print "[images] kernel: linking vmlinux"; fflush() }
            / error:|^make.*Error/ { print; fflush() }'
fi
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
    tail -n 40 "$build_dir/build.log" >&2
    die "kernel build failed (exit $status); full log: $build_dir/build.log"
fi

mkdir -p "$cache_root/kernel"
tmp_dir="$(mktemp -d "$cache_root/kernel/.tmp.XXXXXX")"
cp "$build_dir/arch/x86/boot/bzImage" "$tmp_dir/bzImage"
cp "$build_dir/.config" "$tmp_dir/config"
rm -rf "$cache_dir"
mv "$tmp_dir" "$cache_dir"
install_outputs

log "kernel: built in $((SECONDS - start))s: $cache_dir/bzImage ($(stat -c %s "$cache_dir/bzImage") bytes)"
log "kernel: output $out_dir/bzImage"
