#!/usr/bin/env bash
# Install the Debian 12 packages iovmm's image scripts and test runs need.
#
# Fast no-op when everything is installed. As root it runs `apt-get update`
# (once) and `apt-get install`; otherwise it prints the command and fails.
# The Rust toolchain (rustup, cargo) is not a Debian package and is not handled here.
set -euo pipefail

# The one list of Debian packages the project needs.
PACKAGES=(
    # kernel builds (guest kernel) and the static test binaries (uuid-dev: the static libuuid Linux 7.3's VFIO
    # selftests link, images/build-vfio-selftests.sh)
    build-essential bc bison flex libelf-dev libssl-dev uuid-dev
    # archives: initramfs (cpio + gzip), kernel tarball and modules (xz)
    cpio gzip xz-utils kmod
    # guest kernel sources (Debian's 6.12; images/build-kernel.sh; 7.3 is downloaded from trixie-backports)
    linux-source-6.12
    # TCG test host (images/build-testhost.sh, the guest-tests runner)
    qemu-system-x86 busybox-static
    # firmware tables: iasl (ACPI disassembly in tests), dtc (FDT)
    acpica-tools device-tree-compiler
    # locking in the image scripts (flock)
    util-linux
)

log() { echo "[deps] $*"; }

# Debian 13 trixie-backports carries linux-source-7.3 and Debian's 7.3 binary kernels. The images/ scripts only
# `apt-get download` them (never install: bookworm stays bookworm), so the suite is added in a file of our own,
# pinned to priority 1 so that nothing is ever installed or upgraded from it by accident.
BACKPORTS_SOURCE=/etc/apt/sources.list.d/iovmm-trixie-backports.sources
BACKPORTS_PIN=/etc/apt/preferences.d/iovmm-trixie-backports
backports_ok() {
    [[ -f $BACKPORTS_SOURCE && -f $BACKPORTS_PIN ]] && apt-cache show linux-source-7.3 >/dev/null 2>&1
}
add_backports() {
    cat >"$BACKPORTS_SOURCE" <<'EOF'
# Added by iovmm's scripts/deps.sh: Debian 13 backports, only for `apt-get download` of linux-source-7.3 and
# Debian's 7.3 binary kernel (never installed; pinned to priority 1 in /etc/apt/preferences.d/).
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$BACKPORTS_PIN" <<'EOF'
# iovmm: download only, never install from trixie-backports.
Package: *
Pin: release n=trixie-backports
Pin-Priority: 1
EOF
}

need_update=0
if ! backports_ok; then
    if ((EUID != 0)); then
        log "the trixie-backports apt source (linux-source-7.3, Debian's 7.3 kernels) is missing; run this script as root" >&2
        exit 1
    fi
    log "adding the trixie-backports apt source ($BACKPORTS_SOURCE, pinned to priority 1)"
    add_backports
    need_update=1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    if ((need_update)); then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        backports_ok || { log "error: apt knows no linux-source-7.3 after adding trixie-backports" >&2; exit 1; }
    fi
    log "all ${#PACKAGES[@]} packages installed, trixie-backports reachable"
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
backports_ok || { log "error: apt knows no linux-source-7.3 after adding trixie-backports" >&2; exit 1; }
"${install_cmd[@]}"
log "done"
