#!/usr/bin/env bash
# Build Linux 7.3's own VFIO selftests (tools/testing/selftests/vfio of Debian's linux-source-7.3, the source
# package images/build-kernel.sh 7.3 builds the guest kernel from), statically, and pack them as an initramfs
# fragment for the upstream-vfio-* guest scenarios. No upstream file is kept in this repository: everything is
# built from the package at build time.
#
# Usage:   images/build-vfio-selftests.sh
# Output:  build/images/vfio-selftests.cpio.gz   /opt/vfio-selftests/<binary> for every TEST_GEN_PROGS of the
#                                                selftests' Makefile (static, debug info stripped), and
#                                                /opt/vfio-selftests/VERSION (the source package's version).
#          The runner appends it to the guest initramfs of the upstream-vfio-* scenarios. iovmm-guest runs the
#          binaries itself and does what the upstream scripts/setup.sh does (sriov_numvfs 0, unbind,
#          driver_override + bind to vfio-pci), so the upstream shell scripts (bash) are not packed.
# Cache:   ${IOVMM_CACHE:-$HOME/.cache/iovmm}/vfio-selftests/<key>/vfio-selftests.cpio.gz
#          key = first 16 hex digits of sha256 over (linux-source-7.3's version, this script, lib.sh).
#          On a hit nothing is built; the cached archive is copied.
# Build:   in a scratch copy of the source (removed afterwards): `make headers` (not headers_install, which
#          needs rsync), then in tools/testing/selftests/vfio
#            make KHDR_INCLUDES="-isystem <tree>/usr/include" LDFLAGS="-static -pthread"
#          (static libuuid from Debian's uuid-dev). The last build's log stays at
#          ${IOVMM_CACHE}/vfio-selftests/build.log.
# Env:     IOVMM_CACHE, IOVMM_JOBS (default: nproc).
# Errors:  one "[images] error: ..." line and a non-zero exit; the archive is assembled in a .tmp.* directory
#          and moved into the cache whole, so a failed or interrupted build leaves nothing under <key>.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# The selftests are Linux 7.3's: they run only in scenarios on our 7.3 kernel.
VERSION=7.3
# The binaries the guest runs (guest-tests/src/guest/upstream_vfio.rs has the same list, a unit test checks):
# exactly the selftests Makefile's TEST_GEN_PROGS, checked after the build.
BINARIES=(
    vfio_dma_mapping_test
    vfio_dma_mapping_mmio_test
    vfio_iommufd_setup_test
    vfio_pci_device_test
    vfio_pci_device_init_perf_test
    vfio_pci_driver_test
    vfio_pci_sriov_uapi_test
)
OUTPUT_NAME=vfio-selftests.cpio.gz
GUEST_DIR=/opt/vfio-selftests

(($# == 0)) || die "vfio-selftests: no arguments expected (the selftests are Linux $VERSION's)"
script_path="$(readlink -f "${BASH_SOURCE[0]}")"
jobs="${IOVMM_JOBS:-$(nproc)}"
start=$SECONDS

[[ -f /usr/lib/x86_64-linux-gnu/libuuid.a ]] \
    || die "vfio-selftests: static libuuid missing: uuid-dev is not installed (run scripts/deps.sh)"
src_version="$(kernel_source_version "$VERSION")"
key="$( { printf 'linux-source-%s %s\n' "$VERSION" "$src_version"; cat "$script_path" "$IMAGES_DIR/lib.sh"; } \
        | sha256sum | cut -c1-16)"
top="$CACHE_ROOT/vfio-selftests"
cache_dir="$top/$key"

install_output() {
    mkdir -p "$OUT_DIR"
    cp -f "$cache_dir/$OUTPUT_NAME" "$OUT_DIR/$OUTPUT_NAME.tmp"
    mv "$OUT_DIR/$OUTPUT_NAME.tmp" "$OUT_DIR/$OUTPUT_NAME"
    log "vfio-selftests: output $OUT_DIR/$OUTPUT_NAME (linux-source-$VERSION $src_version)"
}

if [[ -f $cache_dir/$OUTPUT_NAME ]]; then
    log "vfio-selftests: cache hit ($key): $cache_dir/$OUTPUT_NAME"
    install_output
    exit 0
fi

mkdir -p "$top"
# One build at a time per cache.
exec 9>"$top/.lock"
if ! flock -n 9; then
    log "vfio-selftests: waiting for another build to finish"
    flock 9
fi
if [[ -f $cache_dir/$OUTPUT_NAME ]]; then
    log "vfio-selftests: built meanwhile by another run: $cache_dir/$OUTPUT_NAME"
    install_output
    exit 0
fi

log "vfio-selftests: cache miss ($key), building from linux-source-$VERSION $src_version"
tmp_dir=""
work="$(mktemp -d "$top/.tmp.XXXXXX")"
trap 'rm -rf "$work" ${tmp_dir:+"$tmp_dir"}' EXIT
build_log="$top/build.log"
: >"$build_log"

# run_logged WHAT CMD...: run CMD with its output in the build log; on failure, one error line naming WHAT, the
# first compiler/make error of the log, and the log.
run_logged() {
    local what=$1 status first
    shift
    echo "+ $*" >>"$build_log"
    set +e
    "$@" >>"$build_log" 2>&1
    status=$?
    set -e
    if ((status != 0)); then
        first="$(grep -m1 -E 'error:|Error [0-9]+|No such file|cannot find' "$build_log" || true)"
        die "vfio-selftests: $what failed (exit $status)${first:+: $first}; full log: $build_log"
    fi
}

src="$work/src"
mkdir -p "$src"
log "vfio-selftests: extracting linux-source-$VERSION"
extract_kernel_source "$VERSION" "$src" || die "vfio-selftests: cannot extract linux-source-$VERSION"
selftests="$src/tools/testing/selftests/vfio"
[[ -f $selftests/Makefile ]] || die "vfio-selftests: linux-source-$VERSION has no tools/testing/selftests/vfio"

# The binaries the Makefile builds must be exactly the ones the guest knows.
mapfile -t upstream < <(sed -n 's/^TEST_GEN_PROGS *+= *\([A-Za-z0-9_]*\) *$/\1/p' "$selftests/Makefile")
if [[ "$(printf '%s\n' "${upstream[@]}" | sort)" != "$(printf '%s\n' "${BINARIES[@]}" | sort)" ]]; then
    die "vfio-selftests: the Makefile builds '${upstream[*]}', this script and the guest know '${BINARIES[*]}' (update BINARIES here and in guest-tests/src/guest/upstream_vfio.rs)"
fi

log "vfio-selftests: make headers (log: $build_log)"
run_logged "make headers" make -C "$src" ARCH=x86_64 -j"$jobs" headers
log "vfio-selftests: building ${#BINARIES[@]} selftests (static)"
run_logged "make in tools/testing/selftests/vfio" make -C "$selftests" -j"$jobs" \
    KHDR_INCLUDES="-isystem $src/usr/include" LDFLAGS="-static -pthread"

stage="$work/stage"
mkdir -p "$stage"
{
    echo "dir /opt 0755 0 0"
    echo "dir $GUEST_DIR 0755 0 0"
} >"$work/list"
for b in "${BINARIES[@]}"; do
    [[ -x $selftests/$b ]] || die "vfio-selftests: make produced no $b (full log: $build_log)"
    require_static "$selftests/$b"
    strip --strip-debug -o "$stage/$b" "$selftests/$b"
    echo "file $GUEST_DIR/$b $stage/$b 0755 0 0" >>"$work/list"
done
echo "linux-source-$VERSION $src_version" >"$stage/VERSION"
echo "file $GUEST_DIR/VERSION $stage/VERSION 0644 0 0" >>"$work/list"

tmp_dir="$(mktemp -d "$top/.tmp.XXXXXX")"
pack_cpio "$work/list" "$tmp_dir/$OUTPUT_NAME" || die "vfio-selftests: packing the archive failed"
rm -rf "$cache_dir"
mv "$tmp_dir" "$cache_dir"
tmp_dir=""
exec 9>&-
log "vfio-selftests: built in $((SECONDS - start))s: $cache_dir/$OUTPUT_NAME ($(stat -c %s "$cache_dir/$OUTPUT_NAME") bytes)"
install_output
