#!/usr/bin/env bash
# Install the Debian 12 packages iovmm's image scripts and test runs need.
#
# Fast no-op when everything is installed. As root it runs `apt-get update`
# (once) and `apt-get install`; otherwise it prints the command and fails.
# The Rust toolchain (rustup, cargo) is not a Debian package and is not handled here.
set -euo pipefail

# The one list of Debian packages the project needs.
PACKAGES=(
    # kernel builds (guest kernel) and the static test binaries
    build-essential bc bison flex libelf-dev libssl-dev
    # archives: initramfs (cpio + gzip), kernel tarball and modules (xz)
    cpio gzip xz-utils kmod
    # guest kernel sources (Debian's 6.12; images/build-kernel.sh)
    linux-source-6.12
    # TCG test host (images/build-testhost.sh, the guest-tests runner)
    qemu-system-x86 busybox-static
    # firmware tables: iasl (ACPI disassembly in tests), dtc (FDT)
    acpica-tools device-tree-compiler
    # locking in the image scripts (flock)
    util-linux
)

log() { echo "[deps] $*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    log "all ${#PACKAGES[@]} packages installed"
    exit 0
fi

install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if ((EUID != 0)); then
    log "missing packages: ${missing[*]}" >&2
    log "run as root:  apt-get update && ${install_cmd[*]}" >&2
    exit 1
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
"${install_cmd[@]}"
log "done"
