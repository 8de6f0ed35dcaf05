//! The device tree of the POWER TCE unit's PHB as a PAPR (pseries) guest sees it: a logical PHB with its
//! default DMA windows and the dynamic DMA window (DDW) RTAS interface, plus the `/rtas` node carrying the RTAS
//! tokens those properties name. Property layouts follow LoPAR (PAPR) as Linux 6.12 parses them
//! (arch/powerpc/kernel/prom_parse.c `of_parse_dma_window`, arch/powerpc/platforms/pseries/iommu.c
//! `ddw-applicable` / `ddw_read_ext`) and as QEMU's `spapr_dt_phb` writes them:
//!
//! ```text
//! / { compatible = "iovmm,x86-tce-fragment"; #address-cells = <2>; #size-cells = <2>;
//!     rtas { ibm,query-pe-dma-window = <Q>; ibm,create-pe-dma-window = <C>;
//!            ibm,remove-pe-dma-window = <R>; ibm,reset-pe-dma-window = <X>; };
//!     pci@<buid> { compatible = "IBM,Logical_PHB"; device_type = "pci"; reg = <buid 0>;
//!                  #address-cells = <3>; #size-cells = <2>; bus-range = <0 0xff>; ranges = <MMIO32 MMIO64>;
//!                  ibm,#dma-address-cells = <2>; ibm,#dma-size-cells = <2>;
//!                  ibm,dma-window = <liobn0 off0(2) size0(2)  liobn1 off1(2) size1(2)>;
//!                  iovmm,dma-window-page-shift = <shift0 shift1>;
//!                  ibm,ddw-applicable = <Q C R>; ibm,ddw-extensions = <2 X 1>; };
//! };
//! ```
//!
//! * `ibm,dma-window` is LoPAR's property-encoded array with one (LIOBN, bus offset, size) triple per default
//!   window; the offset and size cells are what `ibm,#dma-address-cells` / `ibm,#dma-size-cells` say (2 each,
//!   so 64-bit values work, the 64-bit window's offset 0x800000000000000 included). The windows are written in
//!   ascending bus offset, so the 32-bit window is the first triple.
//! * **The second default window.** QEMU's pseries machine publishes only its 32-bit window (`dma_liobn[0]`)
//!   here and creates the 64-bit one on demand through `ibm,create-pe-dma-window`. Our PE has the seed's two
//!   windows from reset, so both triples are listed: the property describes every window the PE has, and a
//!   tool reading the tree sees the model's real state. A Linux pseries guest is unaffected: its
//!   `of_parse_dma_window` reads only the first triple (the 32-bit window becomes its default iommu table),
//!   and it reaches the 64-bit window through the DDW calls (`ibm,query-pe-dma-window` reports no free window
//!   while both exist; with the reset extension Linux removes/resets and creates its own).
//! * The triple carries no TCE page size (LoPAR conveys page sizes only through the query call's page-size
//!   mask), so `iovmm,dma-window-page-shift` is this fragment's own property: one cell per triple, in order.
//! * `ibm,ddw-applicable` = the query, create and remove tokens, in that order (iommu.c `DDW_QUERY_PE_DMA_WIN`,
//!   `DDW_CREATE_PE_DMA_WIN`, `DDW_REMOVE_PE_DMA_WIN`).
//! * `ibm,ddw-extensions` = <count ext1 ...>: cell 0 is the number of extensions, extension 1 is the
//!   `ibm,reset-pe-dma-window` token (LoPAR 2.7; iommu.c `DDW_EXT_RESET_DMA_WIN`), extension 2 = 1 says
//!   `ibm,query-pe-dma-window` returns six outputs (a 64-bit largest block; iommu.c `DDW_EXT_QUERY_OUT_SIZE`,
//!   `query_ddw`), which is what the TCE model's query answers (iommu::tce::rtas::DDW_EXTENSIONS).
//! * `/rtas` carries each RTAS function's token as a property named after the function, which is how Linux's
//!   `rtas_function_token` finds them; the PHB's `reg` is its BUID (2 cells) with size 0, as in QEMU.

use vm_fdt::FdtWriter;

use super::smmuv3::{PCI_MMIO32, PCI_MMIO64};
use super::FdtError;

/// QEMU's RTAS token base (include/hw/ppc/spapr.h `RTAS_TOKEN_BASE`) and its DDW tokens.
pub const RTAS_TOKEN_BASE: u32 = 0x2000;
pub const RTAS_QUERY_PE_DMA_WINDOW: u32 = RTAS_TOKEN_BASE + 0x26;
pub const RTAS_CREATE_PE_DMA_WINDOW: u32 = RTAS_TOKEN_BASE + 0x27;
pub const RTAS_REMOVE_PE_DMA_WINDOW: u32 = RTAS_TOKEN_BASE + 0x28;
pub const RTAS_RESET_PE_DMA_WINDOW: u32 = RTAS_TOKEN_BASE + 0x29;
/// BUID of QEMU's first PHB (`spapr_phb_placement` base_buid).
pub const DEFAULT_BUID: u64 = 0x0800_0000_2000_0000;
/// Bus offset of the seed's 64-bit window (QEMU `SPAPR_PCI_DMA64_START`).
pub const DMA64_START: u64 = 0x0800_0000_0000_0000;
/// Cells of a window's bus offset and size in `ibm,dma-window`.
pub const DMA_ADDRESS_CELLS: u32 = 2;
pub const DMA_SIZE_CELLS: u32 = 2;
/// Smallest and largest TCE page shift a window may declare (4 KiB .. 1 GiB, the sizes the model offers at most).
const MIN_PAGE_SHIFT: u8 = 12;
const MAX_PAGE_SHIFT: u8 = 30;
/// LoPAR: at most two DMA windows per PE.
const MAX_WINDOWS: usize = 2;

/// `phys.hi` of a PCI address (pci-bus binding): 32-bit and 64-bit memory space.
const PCI_SPACE_MEM32: u32 = 0x0200_0000;
const PCI_SPACE_MEM64: u32 = 0x0300_0000;

/// One DMA window of the PE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TceFdtWindow {
    /// Logical I/O bus number: the handle H_PUT_TCE and friends take.
    pub liobn: u32,
    /// IOBA of the window's first byte.
    pub bus_offset: u64,
    /// Window size in bytes.
    pub size: u64,
    /// log2 of the TCE page size.
    pub page_shift: u8,
}

/// The RTAS tokens of the DDW functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtasDdwTokens {
    pub query: u32,
    pub create: u32,
    pub remove: u32,
    pub reset: u32,
}

impl Default for RtasDdwTokens {
    /// QEMU's tokens.
    fn default() -> Self {
        Self {
            query: RTAS_QUERY_PE_DMA_WINDOW,
            create: RTAS_CREATE_PE_DMA_WINDOW,
            remove: RTAS_REMOVE_PE_DMA_WINDOW,
            reset: RTAS_RESET_PE_DMA_WINDOW,
        }
    }
}

/// What [`tce_fdt`] describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TceFdtConfig {
    /// The PHB's bus unit id (its `reg` and unit address).
    pub buid: u64,
    /// The PE's default windows (one or two), in any order: the tree lists them by ascending bus offset.
    pub windows: Vec<TceFdtWindow>,
    pub rtas: RtasDdwTokens,
}

impl TceFdtConfig {
    /// The seed's default windows: LIOBN 0x80000000 at 0, 1 GiB of 4 KiB pages, and LIOBN 0x80000001 at
    /// 0x800000000000000, 2^45 bytes of 2 MiB pages.
    pub fn seed_windows() -> Vec<TceFdtWindow> {
        vec![
            TceFdtWindow {
                liobn: 0x8000_0000,
                bus_offset: 0,
                size: 1 << 30,
                page_shift: 12,
            },
            TceFdtWindow {
                liobn: 0x8000_0001,
                bus_offset: DMA64_START,
                size: 1 << 45,
                page_shift: 21,
            },
        ]
    }
}

impl Default for TceFdtConfig {
    fn default() -> Self {
        Self {
            buid: DEFAULT_BUID,
            windows: Self::seed_windows(),
            rtas: RtasDdwTokens::default(),
        }
    }
}

fn hi(x: u64) -> u32 {
    (x >> 32) as u32
}

fn lo(x: u64) -> u32 {
    x as u32
}

fn invalid(msg: String) -> FdtError {
    FdtError::InvalidTce(msg)
}

/// Checks one window; returns its last IOBA.
fn check_window(w: &TceFdtWindow) -> Result<u64, FdtError> {
    let name = format!("window LIOBN {:#x}", w.liobn);
    if !(MIN_PAGE_SHIFT..=MAX_PAGE_SHIFT).contains(&w.page_shift) {
        return Err(invalid(format!(
            "{name}: page shift {} is outside {MIN_PAGE_SHIFT}..={MAX_PAGE_SHIFT}",
            w.page_shift
        )));
    }
    let page = 1u64 << w.page_shift;
    if w.size < page || !w.size.is_power_of_two() {
        return Err(invalid(format!(
            "{name}: size {:#x} must be a power of two of at least one {page:#x}-byte page",
            w.size
        )));
    }
    if !w.bus_offset.is_multiple_of(page) {
        return Err(invalid(format!(
            "{name}: bus offset {:#x} is not aligned to its {page:#x}-byte pages",
            w.bus_offset
        )));
    }
    w.bus_offset.checked_add(w.size - 1).ok_or_else(|| {
        invalid(format!(
            "{name}: {:#x} + {:#x} overflows",
            w.bus_offset, w.size
        ))
    })
}

/// Validates `cfg` and returns its windows sorted by bus offset.
fn checked_windows(cfg: &TceFdtConfig) -> Result<Vec<TceFdtWindow>, FdtError> {
    if cfg.windows.is_empty() || cfg.windows.len() > MAX_WINDOWS {
        return Err(invalid(format!(
            "{} windows: a PE has one or two default windows",
            cfg.windows.len()
        )));
    }
    let mut ws = cfg.windows.clone();
    ws.sort_by_key(|w| w.bus_offset);
    let mut prev: Option<(u32, u64)> = None;
    for w in &ws {
        let last = check_window(w)?;
        if let Some((liobn, prev_last)) = prev {
            if liobn == w.liobn {
                return Err(invalid(format!("two windows share LIOBN {liobn:#x}")));
            }
            if w.bus_offset <= prev_last {
                return Err(invalid(format!(
                    "window LIOBN {:#x} at {:#x} overlaps window LIOBN {liobn:#x} (ends {prev_last:#x})",
                    w.liobn, w.bus_offset
                )));
            }
        }
        prev = Some((w.liobn, last));
    }
    let t = cfg.rtas;
    let tokens = [t.query, t.create, t.remove, t.reset];
    for (i, a) in tokens.iter().enumerate() {
        if *a == 0 || tokens[..i].contains(a) {
            return Err(invalid(format!(
                "RTAS tokens {tokens:#x?} must be non-zero and distinct"
            )));
        }
    }
    if cfg.buid == 0 {
        return Err(invalid("BUID 0 is not a PHB".into()));
    }
    Ok(ws)
}

/// Builds the device tree described in the module docs.
pub fn tce_fdt(cfg: &TceFdtConfig) -> Result<Vec<u8>, FdtError> {
    let windows = checked_windows(cfg)?;
    let t = cfg.rtas;

    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "iovmm,x86-tce-fragment")?;
    fdt.property_string("model", "iovmm x86-64 POWER TCE fragment")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;

    let rtas = fdt.begin_node("rtas")?;
    fdt.property_u32("ibm,query-pe-dma-window", t.query)?;
    fdt.property_u32("ibm,create-pe-dma-window", t.create)?;
    fdt.property_u32("ibm,remove-pe-dma-window", t.remove)?;
    fdt.property_u32("ibm,reset-pe-dma-window", t.reset)?;
    fdt.end_node(rtas)?;

    let phb = fdt.begin_node(&format!("pci@{:x}", cfg.buid))?;
    fdt.property_string("device_type", "pci")?;
    fdt.property_string("compatible", "IBM,Logical_PHB")?;
    fdt.property_array_u64("reg", &[cfg.buid, 0])?;
    fdt.property_u32("#address-cells", 3)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_array_u32("bus-range", &[0, 0xFF])?;
    let mut ranges = Vec::new();
    for (space, (b, s)) in [(PCI_SPACE_MEM32, PCI_MMIO32), (PCI_SPACE_MEM64, PCI_MMIO64)] {
        // (phys.hi, pci address), cpu address, size: identity mapped on this machine.
        ranges.extend_from_slice(&[space, hi(b), lo(b), hi(b), lo(b), hi(s), lo(s)]);
    }
    fdt.property_array_u32("ranges", &ranges)?;
    fdt.property_u32("ibm,#dma-address-cells", DMA_ADDRESS_CELLS)?;
    fdt.property_u32("ibm,#dma-size-cells", DMA_SIZE_CELLS)?;
    let mut dma_window = Vec::new();
    for w in &windows {
        dma_window.extend_from_slice(&[
            w.liobn,
            hi(w.bus_offset),
            lo(w.bus_offset),
            hi(w.size),
            lo(w.size),
        ]);
    }
    fdt.property_array_u32("ibm,dma-window", &dma_window)?;
    let shifts: Vec<u32> = windows.iter().map(|w| u32::from(w.page_shift)).collect();
    fdt.property_array_u32("iovmm,dma-window-page-shift", &shifts)?;
    fdt.property_array_u32("ibm,ddw-applicable", &[t.query, t.create, t.remove])?;
    // <number of extensions, extension 1 = reset token, extension 2 = 1: six query outputs>.
    fdt.property_array_u32("ibm,ddw-extensions", &[2, t.reset, 1])?;
    fdt.end_node(phb)?;

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

#[cfg(test)]
mod tests {
    use super::super::test_reader::{parse, Node};
    use super::*;

    const PHB: &str = "pci@800000020000000";

    /// Decodes `ibm,dma-window` the way `of_parse_dma_window` does, for every triple: one LIOBN cell, then
    /// `ibm,#dma-address-cells` offset cells and `ibm,#dma-size-cells` size cells.
    fn dma_windows(n: &Node) -> Vec<(u32, u64, u64)> {
        let ac = n.cells("ibm,#dma-address-cells")[0] as usize;
        let sc = n.cells("ibm,#dma-size-cells")[0] as usize;
        let read = |c: &[u32]| c.iter().fold(0u64, |v, &x| (v << 32) | u64::from(x));
        n.cells("ibm,dma-window")
            .chunks(1 + ac + sc)
            .map(|t| {
                assert_eq!(t.len(), 1 + ac + sc, "a whole triple");
                (t[0], read(&t[1..1 + ac]), read(&t[1 + ac..]))
            })
            .collect()
    }

    #[test]
    fn seed_windows_in_ibm_dma_window() {
        let cfg = TceFdtConfig::default();
        let t = parse(&tce_fdt(&cfg).unwrap());
        let p = t.child(PHB).expect("PHB node");
        assert_eq!(p.cells("ibm,#dma-address-cells"), [2]);
        assert_eq!(p.cells("ibm,#dma-size-cells"), [2]);
        let got = dma_windows(p);
        let want: Vec<(u32, u64, u64)> = cfg
            .windows
            .iter()
            .map(|w| (w.liobn, w.bus_offset, w.size))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            got,
            [
                (0x8000_0000, 0, 0x4000_0000),
                (0x8000_0001, 0x0800_0000_0000_0000, 0x2000_0000_0000)
            ]
        );
        // The seed's permitted ranges follow from the triples.
        let last: Vec<u64> = got.iter().map(|&(_, o, s)| o + s - 1).collect();
        assert_eq!(last, [0x3fff_ffff, 0x0800_1fff_ffff_ffff]);
        assert_eq!(p.cells("iovmm,dma-window-page-shift"), [12, 21]);
    }

    #[test]
    fn phb_node_is_a_logical_phb() {
        let t = parse(&tce_fdt(&TceFdtConfig::default()).unwrap());
        assert_eq!(t.cells("#address-cells"), [2]);
        assert_eq!(t.cells("#size-cells"), [2]);
        let names: Vec<&str> = t.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rtas", PHB]);
        let p = t.child(PHB).unwrap();
        assert_eq!(p.strings("compatible"), ["IBM,Logical_PHB"]);
        assert_eq!(p.strings("device_type"), ["pci"]);
        assert_eq!(p.cells("reg"), [0x0800_0000, 0x2000_0000, 0, 0]);
        assert_eq!(p.cells("#address-cells"), [3]);
        assert_eq!(p.cells("#size-cells"), [2]);
        assert_eq!(p.cells("bus-range"), [0, 0xff]);
        assert_eq!(p.cells("ranges").len(), 14);
        assert_eq!(p.cells("ranges")[0], PCI_SPACE_MEM32);
        assert_eq!(p.cells("ranges")[7], PCI_SPACE_MEM64);
    }

    #[test]
    fn ddw_properties_name_the_rtas_tokens() {
        let t = parse(&tce_fdt(&TceFdtConfig::default()).unwrap());
        let p = t.child(PHB).unwrap();
        let rtas = t.child("rtas").expect("rtas node");
        let token = |name: &str| rtas.cells(name)[0];
        // iommu.c reads three cells: query, create, remove.
        assert_eq!(
            p.cells("ibm,ddw-applicable"),
            [
                token("ibm,query-pe-dma-window"),
                token("ibm,create-pe-dma-window"),
                token("ibm,remove-pe-dma-window")
            ]
        );
        assert_eq!(
            p.cells("ibm,ddw-applicable"),
            [0x2026, 0x2027, 0x2028],
            "QEMU's tokens"
        );
        // ddw_read_ext(np, DDW_EXT_RESET_DMA_WIN = 1): cell 0 is the count, cell 1 the reset token.
        let ext = p.cells("ibm,ddw-extensions");
        assert_eq!(ext, [2, token("ibm,reset-pe-dma-window"), 1]);
        assert_eq!(ext[1], 0x2029);
        assert_eq!(ext[0] as usize, ext.len() - 1, "count matches the cells");
    }

    #[test]
    fn windows_are_listed_32_bit_first_and_tokens_follow_the_config() {
        let mut cfg = TceFdtConfig {
            buid: 0x1234_0000,
            windows: TceFdtConfig::seed_windows(),
            rtas: RtasDdwTokens {
                query: 11,
                create: 12,
                remove: 13,
                reset: 14,
            },
        };
        cfg.windows.reverse();
        cfg.windows[1].size = 1 << 31;
        let t = parse(&tce_fdt(&cfg).unwrap());
        let p = t.child("pci@12340000").expect("unit address is the BUID");
        assert_eq!(dma_windows(p)[0], (0x8000_0000, 0, 1 << 31));
        assert_eq!(dma_windows(p)[1].0, 0x8000_0001);
        assert_eq!(p.cells("iovmm,dma-window-page-shift"), [12, 21]);
        assert_eq!(p.cells("ibm,ddw-applicable"), [11, 12, 13]);
        assert_eq!(p.cells("ibm,ddw-extensions"), [2, 14, 1]);
        assert_eq!(
            t.child("rtas").unwrap().cells("ibm,reset-pe-dma-window"),
            [14]
        );
        // One window only.
        cfg.windows.truncate(1);
        let t = parse(&tce_fdt(&cfg).unwrap());
        assert_eq!(dma_windows(t.child("pci@12340000").unwrap()).len(), 1);
    }

    #[test]
    fn rejects_bad_configurations() {
        let seed = TceFdtConfig::default;
        let with = |f: &dyn Fn(&mut TceFdtConfig)| {
            let mut c = seed();
            f(&mut c);
            c
        };
        for (cfg, want) in [
            (with(&|c| c.windows.clear()), "0 windows"),
            (
                with(&|c| {
                    let mut w = c.windows[0];
                    w.liobn = 7;
                    w.bus_offset = 1 << 40;
                    c.windows.push(w)
                }),
                "3 windows",
            ),
            (with(&|c| c.windows[0].page_shift = 11), "page shift 11"),
            (with(&|c| c.windows[0].page_shift = 31), "page shift 31"),
            (with(&|c| c.windows[0].size = 0x3000), "power of two"),
            (with(&|c| c.windows[1].size = 1 << 20), "at least one"),
            (with(&|c| c.windows[0].bus_offset = 0x800), "not aligned"),
            (
                with(&|c| c.windows[1].bus_offset = u64::MAX - ((1 << 21) - 1)),
                "overflows",
            ),
            (with(&|c| c.windows[1].bus_offset = 1 << 29), "overlaps"),
            (with(&|c| c.windows[1].liobn = 0x8000_0000), "share LIOBN"),
            (with(&|c| c.rtas.remove = c.rtas.query), "distinct"),
            (with(&|c| c.rtas.reset = 0), "non-zero"),
            (with(&|c| c.buid = 0), "BUID 0"),
        ] {
            match tce_fdt(&cfg) {
                Err(FdtError::InvalidTce(m)) => {
                    assert!(m.contains(want), "expected `{want}` in `{m}`")
                }
                other => panic!("{cfg:?}: expected an error, got {other:?}"),
            }
        }
    }
}
