#!/usr/bin/env bash
# Build an iovmm guest kernel (bzImage) from Debian's kernel sources with images/guest-kernel.fragment.
#
# Usage:   images/build-kernel.sh [VERSION ...]      VERSION: 6.12 (default) or 7.3; `all` builds both
#          6.12 = Debian 12's linux-source-6.12 (installed by scripts/deps.sh)
#          7.3  = Debian 13 trixie-backports' linux-source-7.3 (apt-get download; scripts/deps.sh adds the
#                 apt source)
# Output:  build/images/bzImage-VERSION and build/images/guest-kernel-VERSION.config
# Cache:   ${IOVMM_CACHE:-$HOME/.cache/iovmm}/kernel/<key>/{bzImage,config}
#          key = first 16 hex digits of sha256 over (VERSION, the source package's version, the fragment as
#          it applies to VERSION, this script, lib.sh). On a hit nothing is built; the cached kernel is copied.
# Work:    ${IOVMM_CACHE}/kernel-src/<pkg version>/    extracted tarball (kept)
#          ${IOVMM_CACHE}/kernel-build/<pkg version>/  make O= directory (kept, so a fragment change
#                                                      rebuilds incrementally)
# Env:     IOVMM_CACHE, IOVMM_VERBOSE=1 (show the full make output), IOVMM_JOBS (default: nproc).
# Errors:  an unknown version, a missing package or a fragment option Kconfig drops end the script with an
#          error; a failed build leaves nothing under kernel/<key>.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

script_path="$(readlink -f "${BASH_SOURCE[0]}")"
fragment="$IMAGES_DIR/guest-kernel.fragment"
jobs="${IOVMM_JOBS:-$(nproc)}"

versions=("$@")
((${#versions[@]})) || versions=("$DEFAULT_KERNEL_VERSION")
if [[ ${versions[*]} == all ]]; then
    versions=("${KERNEL_VERSIONS[@]}")
fi
for v in "${versions[@]}"; do
    check_kernel_version "$v"
done

build_one() {
    local v=$1 start=$SECONDS src_version key cache_dir src_dir build_dir frag tmp_dir status
    src_version="$(kernel_source_version "$v")"
    frag="$(mktemp)"
    # shellcheck disable=SC2064  # expand now: the path is local
    trap "rm -f '$frag'" RETURN
    fragment_for "$v" "$fragment" >"$frag"
    key="$( { printf 'linux-source-%s %s\n' "$v" "$src_version"; cat "$frag" "$script_path" "$IMAGES_DIR/lib.sh"; } \
            | sha256sum | cut -c1-16)"
    cache_dir="$CACHE_ROOT/kernel/$key"

    install_outputs() {
        mkdir -p "$OUT_DIR"
        cp -f "$cache_dir/bzImage" "$OUT_DIR/bzImage-$v"
        cp -f "$cache_dir/config" "$OUT_DIR/guest-kernel-$v.config"
        log "kernel $v: output $OUT_DIR/bzImage-$v"
    }

    if [[ -f $cache_dir/bzImage && -f $cache_dir/config ]]; then
        log "kernel $v: cache hit ($key): $cache_dir/bzImage"
        install_outputs
        return 0
    fi

    log "kernel $v: cache miss ($key), building linux-source-$v $src_version"
    mkdir -p "$CACHE_ROOT"
    # One kernel build at a time per cache (the source and build dirs are shared).
    exec 9>"$CACHE_ROOT/kernel.lock"
    if ! flock -n 9; then
        log "kernel $v: waiting for another kernel build to finish"
        flock 9
    fi
    if [[ -f $cache_dir/bzImage && -f $cache_dir/config ]]; then
        log "kernel $v: built meanwhile by another run: $cache_dir/bzImage"
        install_outputs
        exec 9>&-
        return 0
    fi

    src_dir="$CACHE_ROOT/kernel-src/$src_version"
    build_dir="$CACHE_ROOT/kernel-build/$src_version"
    if [[ ! -f $src_dir/.extracted ]]; then
        log "kernel $v: extracting linux-source-$v to $src_dir"
        rm -rf "$src_dir"
        mkdir -p "$src_dir"
        if ! extract_kernel_source "$v" "$src_dir"; then
            rm -rf "$src_dir"
            die "kernel $v: cannot extract linux-source-$v"
        fi
        touch "$src_dir/.extracted"
    fi

    mkdir -p "$build_dir"
    log "kernel $v: configuring (allnoconfig + fragment)"
    make -s -C "$src_dir" O="$build_dir" ARCH=x86_64 KCONFIG_ALLCONFIG="$frag" allnoconfig >/dev/null

    # Every option the fragment sets must survive Kconfig's dependency resolution.
    local dropped=() line
    while IFS= read -r line; do
        if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
            grep -qxF -- "$line" "$build_dir/.config" \
                || dropped+=("$line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$build_dir/.config" || echo unset))")
        elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            ! grep -qE "^${BASH_REMATCH[1]}=" "$build_dir/.config" \
                || dropped+=("$line (got: $(grep -E "^${BASH_REMATCH[1]}=" "$build_dir/.config"))")
        fi
    done <"$frag"
    if ((${#dropped[@]})); then
        local joined
        joined="$(printf '%s; ' "${dropped[@]}")"
        die "kernel $v: Kconfig did not honour ${#dropped[@]} fragment line(s) (a missing dependency, or an option Linux $v lacks: give such a line a \"VERSION: \" prefix): ${joined%; }"
    fi
    log "kernel $v: all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set)' "$frag") fragment options present in .config"

    # Fixed build identity (uname -v) instead of user, host, date and a counter.
    export KBUILD_BUILD_USER=iovmm KBUILD_BUILD_HOST=iovmm KBUILD_BUILD_VERSION=1 \
        KBUILD_BUILD_TIMESTAMP="linux-source-$v $src_version"

    log "kernel $v: make -j$jobs bzImage (log: $build_dir/build.log)"
    set +e
    if [[ ${IOVMM_VERBOSE:-0} == 1 ]]; then
        make -C "$src_dir" O="$build_dir" ARCH=x86_64 -j"$jobs" bzImage 2>&1 | tee "$build_dir/build.log"
    else
        make -C "$src_dir" O="$build_dir" ARCH=x86_64 -j"$jobs" bzImage 2>&1 | tee "$build_dir/build.log" \
            | awk -v v="$v" '
                /^  CC / { n++; if (n % 250 == 0) { printf "[images] kernel %s: %d files compiled\n", v, n; fflush() } }
                /^  LD  *vmlinux$/ { printf "[images] kernel %s: linking vmlinux\n", v; fflush() }
                / error:|^make.*Error/ { print; fflush() }'
    fi
    status=${PIPESTATUS[0]}
    set -e
    if ((status != 0)); then
        tail -n 40 "$build_dir/build.log" >&2
        die "kernel $v: build failed (exit $status); full log: $build_dir/build.log"
    fi

    mkdir -p "$CACHE_ROOT/kernel"
    tmp_dir="$(mktemp -d "$CACHE_ROOT/kernel/.tmp.XXXXXX")"
    cp "$build_dir/arch/x86/boot/bzImage" "$tmp_dir/bzImage"
    cp "$build_dir/.config" "$tmp_dir/config"
    rm -rf "$cache_dir"
    mv "$tmp_dir" "$cache_dir"
    exec 9>&-
    log "kernel $v: built in $((SECONDS - start))s: $cache_dir/bzImage ($(stat -c %s "$cache_dir/bzImage") bytes)"
    install_outputs
}

for v in "${versions[@]}"; do
    build_one "$v"
done
