#!/usr/bin/env bash
# Fetch Debian's own binary kernels for the `distro-*` guest scenarios: kernels nobody here configured.
#
# Usage:   images/build-distro.sh [VERSION ...]      VERSION: 6.12 (default) or 7.3; `all` fetches both
#          6.12 = Debian 12's linux-image-<upstream>+deb12-amd64 (the version of the installed linux-source-6.12)
#          7.3  = Debian 13 trixie-backports' linux-binary-<upstream>+deb13-amd64 + linux-modules-<same>
#                 (the version of linux-source-7.3), fetched with `apt-get download`, never installed
# Output:  build/images/distro-VERSION/vmlinuz          the distribution's kernel, as shipped
#          build/images/distro-VERSION/modules.cpio.gz  an initramfs fragment: the modules the guest tests
#                                                        load (MODULES below, plus their dependencies, from the
#                                                        same package, decompressed) in /lib/modules/, and
#                                                        /lib/modules/load.list naming them in load order
#          build/images/distro-VERSION/release          the kernel release (uname -r)
# Cache:   ${IOVMM_CACHE:-$HOME/.cache/iovmm}/debs/*.deb and distro/<key>/
#          key = first 16 hex digits of sha256 over (the .debs' names and sha256, this script, lib.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# Modules the guest tests need that Debian builds as modules (intel-iommu, the 8250 console, ACPI and PCI are
# built in): VFIO with the type1 container (Debian's kernels have no IOMMUFD), and the I/OAT DMA engine driver
# whose probe-time self-test moves data through the kernel's DMA-API domain.
MODULES=(vfio_iommu_type1 vfio-pci ioatdma)

versions=("$@")
((${#versions[@]})) || versions=("$DEFAULT_KERNEL_VERSION")
if [[ ${versions[*]} == all ]]; then
    versions=("${KERNEL_VERSIONS[@]}")
fi
for v in "${versions[@]}"; do
    check_kernel_version "$v"
done

# distro_debs V: the .deb files of Debian's binary kernel V (kernel first), fetched into the cache.
distro_debs() {
    local v=$1 src upstream
    src="$(kernel_source_version "$v")"
    upstream="${src%%-*}"
    case $v in
        6.12) fetch_deb "linux-image-${upstream}+deb12-amd64" "$src" ;;
        7.3)
            fetch_deb "linux-binary-${upstream}+deb13-amd64" "$src"
            fetch_deb "linux-modules-${upstream}+deb13-amd64" "$src"
            ;;
    esac
}

build_one() {
    local v=$1 start=$SECONDS debs=() key cache_dir out work deb vmlinuz release moddir
    mapfile -t debs < <(distro_debs "$v")
    ((${#debs[@]})) || die "distro $v: no packages"
    key="$( { for deb in "${debs[@]}"; do printf '%s %s\n' "$(basename "$deb")" "$(sha256sum <"$deb" | cut -d' ' -f1)"; done
              printf '%s\n' "${MODULES[@]}"; cat "${BASH_SOURCE[0]}" "$IMAGES_DIR/lib.sh"; } | sha256sum | cut -c1-16)"
    cache_dir="$CACHE_ROOT/distro/$key"
    out="$OUT_DIR/distro-$v"

    if [[ ! -f $cache_dir/vmlinuz || ! -f $cache_dir/modules.cpio.gz || ! -f $cache_dir/release ]]; then
        log "distro $v: cache miss ($key), unpacking $(for deb in "${debs[@]}"; do basename "$deb"; done | paste -sd' ')"
        work="$(mktemp -d)"
        # shellcheck disable=SC2064  # expand now: the path is local
        trap "rm -rf '$work'" RETURN
        for deb in "${debs[@]}"; do
            dpkg-deb -x "$deb" "$work/root"
        done
        vmlinuz="$(find "$work/root" -type f \( -name 'vmlinuz-*' -o -name vmlinuz \) -print -quit)"
        [[ -n $vmlinuz ]] || die "distro $v: no vmlinuz in the packages"
        moddir="$(find "$work/root" -type d -path '*/lib/modules/*' -name kernel -print -quit)"
        [[ -n $moddir ]] || die "distro $v: no lib/modules/<release>/kernel in the packages"
        release="$(basename "$(dirname "$moddir")")"

        # Resolve every wanted module and its dependencies (modinfo's depends), dependencies first.
        mkdir -p "$work/modules"
        local order=() seen=" "
        find_module() {
            local f
            f="$(find "$moddir" -name "$1.ko*" -print -quit)"
            [[ -n $f ]] || f="$(find "$moddir" -name "${1//_/-}.ko*" -print -quit)"
            [[ -n $f ]] || f="$(find "$moddir" -name "${1//-/_}.ko*" -print -quit)"
            [[ -n $f ]] || die "distro $v: module $1 is not in the packages (built in? then drop it from MODULES)"
            echo "$f"
        }
        add_module() {
            local name=$1 f plain dep deps
            f="$(find_module "$name")"
            plain="$(basename "$f")"
            plain="${plain%.xz}"
            plain="${plain%.zst}"
            plain="${plain%.gz}"
            [[ $seen != *" $plain "* ]] || return 0
            seen+="$plain "
            case $f in
                *.xz) xz -dc "$f" >"$work/modules/$plain" ;;
                *.zst) zstd -qdc "$f" >"$work/modules/$plain" ;;
                *.gz) gzip -dc "$f" >"$work/modules/$plain" ;;
                *) cp "$f" "$work/modules/$plain" ;;
            esac
            IFS=, read -r -a deps <<<"$(modinfo -F depends "$work/modules/$plain")"
            for dep in "${deps[@]}"; do
                [[ -n $dep ]] && add_module "$dep"
            done
            order+=("$plain")
        }
        local m
        for m in "${MODULES[@]}"; do
            add_module "$m"
        done
        printf '%s\n' "${order[@]}" >"$work/load.list"
        {
            echo "dir /lib 0755 0 0"
            echo "dir /lib/modules 0755 0 0"
            for m in "${order[@]}"; do
                echo "file /lib/modules/$m $work/modules/$m 0644 0 0"
            done
            echo "file /lib/modules/load.list $work/load.list 0644 0 0"
        } >"$work/list"

        mkdir -p "$CACHE_ROOT/distro"
        local tmp_dir
        tmp_dir="$(mktemp -d "$CACHE_ROOT/distro/.tmp.XXXXXX")"
        cp "$vmlinuz" "$tmp_dir/vmlinuz"
        pack_cpio "$work/list" "$tmp_dir/modules.cpio.gz"
        echo "$release" >"$tmp_dir/release"
        rm -rf "$cache_dir"
        mv "$tmp_dir" "$cache_dir"
        log "distro $v: $release, modules in load order: ${order[*]} ($((SECONDS - start))s)"
    else
        log "distro $v: cache hit ($key): $cache_dir"
    fi
    rm -rf "$out"
    mkdir -p "$out"
    cp -f "$cache_dir/vmlinuz" "$cache_dir/modules.cpio.gz" "$cache_dir/release" "$out/"
    log "distro $v: output $out/{vmlinuz,modules.cpio.gz,release}"
}

for v in "${versions[@]}"; do
    build_one "$v"
done
