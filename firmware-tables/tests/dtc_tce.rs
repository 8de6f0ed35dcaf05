//! Cross-checks the TCE PHB device tree with the device tree compiler (Debian package
//! `device-tree-compiler`): `dtc -I dtb -O dts` decompiles the blob with no warnings from its checks (PCI
//! bridge node name, `ranges`/`reg` formats, cell counts, unit addresses), and the decompiled properties equal
//! the windows and RTAS tokens passed in — the seed's default windows (LIOBN 0x80000000 at 0, 1 GiB of 4 KiB
//! pages; LIOBN 0x80000001 at 0x800000000000000, 2^45 bytes of 2 MiB pages).
//!
//! A missing `dtc` fails the test (CI installs device-tree-compiler), like the SMMUv3 and DMAR cross-checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use firmware_tables::fdt::{tce_fdt, TceFdtConfig, TceFdtWindow};

fn require_dtc() {
    if Command::new("dtc").arg("--version").output().is_err() {
        panic!("`dtc` is not installed: apt-get install device-tree-compiler");
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dtc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Decompiles `blob`; asserts dtc succeeded without any warning or error on stderr.
fn decompile(blob: &[u8], name: &str) -> String {
    require_dtc();
    let dir = scratch(name);
    let file = format!("{name}.dtb");
    std::fs::write(dir.join(&file), blob).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-o", "-", &file])
        .current_dir(&dir)
        .output()
        .expect("run dtc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dtc failed:\n{stderr}");
    assert!(stderr.trim().is_empty(), "dtc complained:\n{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The trimmed lines of the node whose header line is `<name> {`, up to its closing brace.
fn node<'a>(dts: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("{name} {{");
    let mut lines = dts.lines().map(str::trim);
    assert!(lines.any(|l| l == header), "no node {name}:\n{dts}");
    lines.take_while(|l| *l != "};").collect()
}

/// The cells of `name = <...>;` in `lines`, parsed from dtc's hex.
fn cells(lines: &[&str], name: &str) -> Vec<u32> {
    let prefix = format!("{name} = <");
    let line = lines
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {lines:#?}"));
    let body = line[prefix.len()..]
        .strip_suffix(">;")
        .unwrap_or_else(|| panic!("{line} is not one cell list"));
    body.split_whitespace()
        .map(|c| u32::from_str_radix(c.trim_start_matches("0x"), 16).expect("hex cell"))
        .collect()
}

fn has(lines: &[&str], want: &str) {
    assert!(lines.contains(&want), "no `{want}` in {lines:#?}");
}

/// `ibm,dma-window` decoded as `of_parse_dma_window` does, for every (LIOBN, offset, size) triple.
fn windows(phb: &[&str]) -> Vec<(u32, u64, u64)> {
    let ac = cells(phb, "ibm,#dma-address-cells")[0] as usize;
    let sc = cells(phb, "ibm,#dma-size-cells")[0] as usize;
    let n = |c: &[u32]| c.iter().fold(0u64, |v, &x| (v << 32) | u64::from(x));
    let raw = cells(phb, "ibm,dma-window");
    assert_eq!(raw.len() % (1 + ac + sc), 0, "whole triples: {raw:x?}");
    raw.chunks(1 + ac + sc)
        .map(|t| (t[0], n(&t[1..1 + ac]), n(&t[1 + ac..])))
        .collect()
}

#[test]
fn seed_windows_decompile_to_the_windows_passed_in() {
    let cfg = TceFdtConfig::default();
    assert_eq!(
        cfg.windows,
        [
            TceFdtWindow {
                liobn: 0x8000_0000,
                bus_offset: 0,
                size: 1 << 30,
                page_shift: 12
            },
            TceFdtWindow {
                liobn: 0x8000_0001,
                bus_offset: 0x0800_0000_0000_0000,
                size: 1 << 45,
                page_shift: 21
            },
        ],
        "the seed's default windows"
    );
    let dts = decompile(&tce_fdt(&cfg).expect("tree builds"), "tce");
    println!("{dts}");

    let root: Vec<&str> = dts
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "/ {")
        .take_while(|l| !l.ends_with('{') || *l == "/ {")
        .collect();
    has(&root, "#address-cells = <0x02>;");
    has(&root, "#size-cells = <0x02>;");

    let phb = node(&dts, "pci@800000020000000");
    has(&phb, "compatible = \"IBM,Logical_PHB\";");
    has(&phb, "device_type = \"pci\";");
    has(&phb, "reg = <0x8000000 0x20000000 0x00 0x00>;");
    has(&phb, "ibm,#dma-address-cells = <0x02>;");
    has(&phb, "ibm,#dma-size-cells = <0x02>;");
    has(
        &phb,
        "ibm,dma-window = <0x80000000 0x00 0x00 0x00 0x40000000 \
         0x80000001 0x8000000 0x00 0x2000 0x00>;",
    );
    let want: Vec<(u32, u64, u64)> = cfg
        .windows
        .iter()
        .map(|w| (w.liobn, w.bus_offset, w.size))
        .collect();
    assert_eq!(windows(&phb), want, "ibm,dma-window equals the windows");
    let shifts: Vec<u32> = cfg
        .windows
        .iter()
        .map(|w| u32::from(w.page_shift))
        .collect();
    assert_eq!(cells(&phb, "iovmm,dma-window-page-shift"), shifts);

    let rtas = node(&dts, "rtas");
    let token = |name: &str| cells(&rtas, name)[0];
    has(&phb, "ibm,ddw-applicable = <0x2026 0x2027 0x2028>;");
    assert_eq!(
        cells(&phb, "ibm,ddw-applicable"),
        [
            token("ibm,query-pe-dma-window"),
            token("ibm,create-pe-dma-window"),
            token("ibm,remove-pe-dma-window")
        ]
    );
    has(&phb, "ibm,ddw-extensions = <0x02 0x2029 0x01>;");
    assert_eq!(
        cells(&phb, "ibm,ddw-extensions"),
        [2, token("ibm,reset-pe-dma-window"), 1]
    );
}

#[test]
fn other_windows_and_tokens_round_trip() {
    let mut cfg = TceFdtConfig {
        windows: vec![
            TceFdtWindow {
                liobn: 0x8000_0001,
                bus_offset: 1 << 40,
                size: 1 << 36,
                page_shift: 16,
            },
            TceFdtWindow {
                liobn: 0x42,
                bus_offset: 0x1000_0000,
                size: 1 << 28,
                page_shift: 12,
            },
        ],
        ..TceFdtConfig::default()
    };
    cfg.rtas.query = 0x101;
    cfg.rtas.reset = 0x104;
    let dts = decompile(&tce_fdt(&cfg).unwrap(), "tce-other");
    let phb = node(&dts, "pci@800000020000000");
    // Ascending bus offset: the 32-bit window comes first whatever the config order.
    assert_eq!(
        windows(&phb),
        [
            (0x42, 0x1000_0000, 1 << 28),
            (0x8000_0001, 1 << 40, 1 << 36)
        ]
    );
    assert_eq!(cells(&phb, "iovmm,dma-window-page-shift"), [12, 16]);
    assert_eq!(cells(&phb, "ibm,ddw-applicable")[0], 0x101);
    assert_eq!(cells(&phb, "ibm,ddw-extensions"), [2, 0x104, 1]);
    assert_eq!(
        cells(&node(&dts, "rtas"), "ibm,query-pe-dma-window"),
        [0x101]
    );
}
