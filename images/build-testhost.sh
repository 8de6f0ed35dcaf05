#!/usr/bin/env bash
# Build the TCG test host: a QEMU TCG machine (-cpu max offers nested SVM)
# running Debian's prebuilt 6.12 kernel with kvm-amd, so /dev/kvm is real
# (emulated) SVM even where the machine's own /dev/kvm cannot run Linux guests.
# (A /dev/kvm served by software PVM cannot run Linux guests; nested SVM under TCG can.)
#
# Outputs:
#   build/images/testhost-vmlinuz        Debian's linux-image-<ver>+deb12-amd64 vmlinuz,
#                                        same version as the installed linux-source-6.12
#   build/images/testhost-base.cpio.gz   busybox-static (+ applet symlinks), the modules
#                                        irqbypass, ccp, kvm, kvm-amd, and /init
# Cache: ${IOVMM_CACHE:-$HOME/.cache/iovmm}/debs/<linux-image .deb> (lib.sh fetch_deb)
#        ${IOVMM_CACHE}/testhost/<key>/{vmlinuz,base.cpio.gz}
#        key = first 16 hex digits of sha256 over (.deb file name and sha256,
#              busybox-static version, this script, lib.sh).
#
# How the runner uses it
# ----------------------
# 1. It packs a second gzip'd newc archive, the scenario, containing at least
#      dir  /scenario                         (0755)
#      file /scenario/run.sh                  the scenario script, run as `sh /scenario/run.sh`
#                                             with cwd /scenario; its exit status is reported
#    and whatever run.sh needs, by convention:
#      /scenario/iovmm                        the static VMM (crt-static build)
#      /scenario/bzImage                      the guest kernel (build/images/bzImage)
#      /scenario/initrd                       the guest initramfs (+ its /expect.json archive)
# 2. combined.cpio.gz = testhost-base.cpio.gz followed by the scenario archive
#    (`cat base.cpio.gz scenario.cpio.gz > combined.cpio.gz`: Linux unpacks
#    concatenated compressed archives in order, later files win).
# 3. It runs
#      qemu-system-x86_64 -accel tcg -M q35 -cpu max -smp 1 -m 2048 \
#        -kernel build/images/testhost-vmlinuz -initrd combined.cpio.gz \
#        -append "console=ttyS0 panic=-1 quiet" -nographic -no-reboot
#    and reads the serial console from QEMU's stdout:
#      iovmm-testhost: ready                  modules loaded, /dev/kvm present
#      ... run.sh's output (and so the guest's serial console) ...
#      iovmm-testhost: exit-status=<N>        run.sh's exit status (N=125: the test
#                                             host itself failed before run.sh)
#    then the test host powers off and QEMU exits (status 0). If /init dies, the
#    kernel panics, panic=-1 reboots at once and -no-reboot makes QEMU exit.
#    Adding `iovmm.shell` to -append gives an interactive shell on the console
#    after run.sh (or instead of it, without a scenario) for debugging.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# Modules to load, in dependency order (checked against modinfo below).
MODULES=(
    virt/lib/irqbypass
    drivers/crypto/ccp/ccp
    arch/x86/kvm/kvm
    arch/x86/kvm/kvm-amd
)
busybox=/bin/busybox
start=$SECONDS

# --- Debian's linux-image matching linux-source-6.12 (the distro-6.12 guest kernel is the same package) -----
src_version="$(linux_source_version)"            # e.g. 6.12.117-1~deb12u1
upstream="${src_version%%-*}"                     # e.g. 6.12.117
deb="$(fetch_deb "linux-image-${upstream}+deb12-amd64" "$src_version")"

busybox_version="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)" \
    || die "busybox-static is not installed (run scripts/deps.sh)"
require_static "$busybox"

key="$( { printf '%s %s\nbusybox-static %s\n' "$(basename "$deb")" "$(sha256sum <"$deb" | cut -d' ' -f1)" \
            "$busybox_version"; cat "${BASH_SOURCE[0]}" "$IMAGES_DIR/lib.sh"; } | sha256sum | cut -c1-16)"
cache_dir="$CACHE_ROOT/testhost/$key"

install_outputs() {
    mkdir -p "$OUT_DIR"
    cp -f "$cache_dir/vmlinuz" "$OUT_DIR/testhost-vmlinuz"
    cp -f "$cache_dir/base.cpio.gz" "$OUT_DIR/testhost-base.cpio.gz"
    log "testhost: $OUT_DIR/testhost-vmlinuz"
    log "testhost: $OUT_DIR/testhost-base.cpio.gz"
}

if [[ -f $cache_dir/vmlinuz && -f $cache_dir/base.cpio.gz ]]; then
    log "testhost: cache hit ($key): $cache_dir"
    install_outputs
    exit 0
fi
log "testhost: cache miss ($key), building from $(basename "$deb")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- Unpack the kernel and the modules ----------------------------------------
log "testhost: unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$work/deb"
vmlinuz="$(find "$work/deb/boot" -name 'vmlinuz-*' -print -quit)"
[[ -n $vmlinuz ]] || die "no boot/vmlinuz-* in $(basename "$deb")"
kver="${vmlinuz##*/vmlinuz-}"
moddir="$work/deb/lib/modules/$kver/kernel"

mkdir -p "$work/modules"
loaded=()
for m in "${MODULES[@]}"; do
    name="${m##*/}"
    [[ -f $moddir/$m.ko.xz ]] || die "$m.ko.xz not in $(basename "$deb")"
    xz -dc "$moddir/$m.ko.xz" >"$work/modules/$name.ko"
    # Each module's dependencies must be loaded before it.
    IFS=, read -r -a deps <<<"$(modinfo -F depends "$work/modules/$name.ko")"
    for d in "${deps[@]}"; do
        [[ " ${loaded[*]} " == *" ${d//_/-} "* || " ${loaded[*]} " == *" $d "* ]] \
            || die "module $name needs $d, which is not loaded before it"
    done
    loaded+=("$name")
done
log "testhost: kernel $kver, modules: ${loaded[*]}"

# --- /init --------------------------------------------------------------------
cat >"$work/init" <<EOF
#!/bin/sh
# iovmm TCG test host /init (generated by images/build-testhost.sh).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

finish() {
    echo "iovmm-testhost: exit-status=\$1"
    if grep -qw iovmm.shell /proc/cmdline; then
        echo "iovmm-testhost: iovmm.shell: starting a shell; exit it to power off"
        setsid cttyhack sh
    fi
    sync
    poweroff -f
    echo o >/proc/sysrq-trigger
    sleep 5
    exit "\$1"     # last resort: init exits, the kernel panics, panic=-1 + -no-reboot end QEMU
}

fail() {
    echo "iovmm-testhost: error: \$*"
    finish 125
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev || fail "cannot mount devtmpfs"
mount -t tmpfs tmpfs /tmp
for m in ${loaded[*]}; do
    insmod /lib/modules/\$m.ko || fail "insmod \$m failed"
done
[ -c /dev/kvm ] || fail "/dev/kvm missing after loading kvm-amd (no SVM? use -cpu max)"
echo "iovmm-testhost: ready"

if [ -f /scenario/run.sh ]; then
    cd /scenario || fail "cannot cd /scenario"
    sh /scenario/run.sh
    status=\$?
    cd / || true
    finish \$status
elif grep -qw iovmm.shell /proc/cmdline; then
    finish 0
else
    echo "iovmm-testhost: no /scenario/run.sh"
    finish 0
fi
EOF

# --- Archive --------------------------------------------------------------------
list="$work/list"
{
    echo "dir /bin 0755 0 0"
    echo "dir /sbin 0755 0 0"
    echo "dir /usr 0755 0 0"
    echo "dir /usr/bin 0755 0 0"
    echo "dir /usr/sbin 0755 0 0"
    echo "dir /dev 0755 0 0"
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "nod /dev/null 0666 0 0 c 1 3"
    echo "dir /proc 0555 0 0"
    echo "dir /sys 0555 0 0"
    echo "dir /tmp 1777 0 0"
    echo "dir /scenario 0755 0 0"
    echo "file /bin/busybox $busybox 0755 0 0"
    # Applet links (relative targets), e.g. /sbin/insmod -> ../bin/busybox.
    "$busybox" --list-full | LC_ALL=C sort | while read -r applet; do
        [[ $applet == */* && $applet != bin/busybox ]] || continue
        up="$(dirname "$applet" | sed -E 's#[^/]+#..#g')"
        echo "slink /$applet $up/bin/busybox 0777 0 0"
    done
    echo "dir /lib 0755 0 0"
    echo "dir /lib/modules 0755 0 0"
    for name in "${loaded[@]}"; do
        echo "file /lib/modules/$name.ko $work/modules/$name.ko 0644 0 0"
    done
    echo "file /init $work/init 0755 0 0"
} >"$list"

mkdir -p "$CACHE_ROOT/testhost"
tmp_dir="$(mktemp -d "$CACHE_ROOT/testhost/.tmp.XXXXXX")"
cp "$vmlinuz" "$tmp_dir/vmlinuz"
pack_cpio "$list" "$tmp_dir/base.cpio.gz"
rm -rf "$cache_dir"
mv "$tmp_dir" "$cache_dir"
log "testhost: built in $((SECONDS - start))s ($(stat -c %s "$cache_dir/base.cpio.gz") bytes of initramfs)"
install_outputs
