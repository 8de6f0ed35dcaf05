//! Cross-checks the SMMUv3 device tree fragment with the device tree compiler (Debian package
//! `device-tree-compiler`): `dtc -I dtb -O dts` decompiles the blob with no warnings from its checks
//! (unit addresses, `reg` sizes, PCI bridge, phandle references and their cell counts), and the decompiled
//! source has the nodes and properties we wrote.
//!
//! Without `dtc` the tests say so and pass (CI installs device-tree-compiler).

use std::path::{Path, PathBuf};
use std::process::Command;

use firmware_tables::fdt::smmuv3_fdt;

fn have_dtc() -> bool {
    if Command::new("dtc").arg("--version").output().is_ok() {
        return true;
    }
    // Like the DMAR cross-check: a missing tool is a failure, not a silent skip (CI installs device-tree-compiler).
    panic!("`dtc` is not installed: apt-get install device-tree-compiler");
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dtc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Runs dtc; returns stdout and asserts it succeeded without any warning or error on stderr.
fn dtc(args: &[&str], dir: &Path) -> String {
    let out = Command::new("dtc")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run dtc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dtc {args:?} failed:\n{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "dtc {args:?} complained:\n{stderr}"
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The lines of the node whose header line is `<name> {`, up to its closing brace (no nested nodes here).
fn node<'a>(dts: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("{name} {{");
    let mut lines = dts.lines().map(str::trim);
    assert!(
        lines.any(|l| l == header || l.ends_with(&format!(": {header}"))),
        "no node {name}:\n{dts}"
    );
    lines.take_while(|l| *l != "};").collect()
}

fn has(lines: &[&str], want: &str) {
    assert!(lines.contains(&want), "no `{want}` in {lines:#?}");
}

#[test]
fn smmuv3_fragment_decompiles_cleanly() {
    if !have_dtc() {
        return;
    }
    let blob = smmuv3_fdt(0xFEA0_0000, 0x2_0000, 16).expect("fragment builds");
    let dir = scratch("smmuv3");
    std::fs::write(dir.join("smmuv3.dtb"), &blob).unwrap();
    let dts = dtc(&["-I", "dtb", "-O", "dts", "-o", "-", "smmuv3.dtb"], &dir);

    let root: Vec<&str> = dts
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "/ {")
        .take_while(|l| !l.ends_with('{') || *l == "/ {")
        .collect();
    has(&root, "compatible = \"iovmm,x86-smmuv3-fragment\";");
    has(&root, "#address-cells = <0x02>;");
    has(&root, "#size-cells = <0x02>;");

    let smmu = node(&dts, "iommu@fea00000");
    has(&smmu, "compatible = \"arm,smmu-v3\";");
    has(&smmu, "reg = <0x00 0xfea00000 0x00 0x20000>;");
    has(&smmu, "#iommu-cells = <0x01>;");
    has(&smmu, "dma-coherent;");
    has(&smmu, "msi-parent = <0x01 0x10000>;");
    has(&smmu, "phandle = <0x02>;");

    let msi = node(&dts, "msi-controller@fee00000");
    has(&msi, "msi-controller;");
    has(&msi, "#msi-cells = <0x01>;");
    has(&msi, "phandle = <0x01>;");

    let pcie = node(&dts, "pcie@e0000000");
    has(&pcie, "compatible = \"pci-host-ecam-generic\";");
    has(&pcie, "device_type = \"pci\";");
    has(&pcie, "reg = <0x00 0xe0000000 0x00 0x10000000>;");
    has(&pcie, "bus-range = <0x00 0xff>;");
    // RID r -> StreamID r of the node with phandle 2 (the SMMU), for all 0x10000 RIDs.
    has(&pcie, "iommu-map = <0x00 0x02 0x00 0x10000>;");
    has(&pcie, "msi-map = <0x00 0x01 0x00 0x10000>;");
    assert!(!pcie.iter().any(|l| l.starts_with("iommu-map-mask")));

    // dtc resolved those phandles while checking the blob: with a dangling one it complains.
    let mut bad = blob.clone();
    let parent = [0, 0, 0, 1, 0, 1, 0, 0]; // msi-parent = <1 0x10000>
    let at = bad
        .windows(parent.len())
        .position(|w| w == parent)
        .expect("msi-parent cells in the blob");
    bad[at + 3] = 7;
    std::fs::write(dir.join("bad.dtb"), &bad).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-o", "-", "bad.dtb"])
        .current_dir(&dir)
        .output()
        .expect("run dtc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("msi-parent") && stderr.contains("phandle"),
        "dtc did not notice the dangling msi-parent:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
