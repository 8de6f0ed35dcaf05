//! SMMUv3 model tests: a test rig that programs the SMMU the way Linux 6.12's arm-smmu-v3 driver
//! does (register order, queue and table formats), and builds translation tables in test memory.

mod bringup;
mod caching;
mod cmdq;
mod configs;
mod events;
mod lookup;

use crate::RegisterWindow;
use std::sync::{Arc, Mutex};

use super::regs::*;
use super::{Smmuv3, Smmuv3Config};
use crate::mem::{DmaMemory, TestMemory};
use crate::request::{Access, DmaFault, DmaPort, DmaRequest, InterruptSink, Translation};

pub const MEM_SIZE: usize = 0x100_0000;
pub const STRTAB: u64 = 0x10_0000;
pub const CMDQ: u64 = 0x20_0000;
pub const EVTQ: u64 = 0x21_0000;
/// Where tables are allocated from.
pub const POOL: u64 = 0x40_0000;
/// MSI addresses outside RAM (they reach the interrupt sink).
pub const GERROR_MSI: u64 = 0xfee0_1000;
pub const EVTQ_MSI: u64 = 0xfee0_2000;
pub const CMDQ_LOG2: u32 = 8;
pub const EVTQ_LOG2: u32 = 5;

#[derive(Default)]
pub struct Msis(pub Mutex<Vec<(u64, u32)>>);

impl InterruptSink for Msis {
    fn msi(&self, address: u64, data: u32) {
        self.0.lock().unwrap().push((address, data));
    }
}

pub struct Rig {
    pub smmu: Smmuv3,
    pub mem: Arc<TestMemory>,
    pub irq: Arc<Msis>,
    next: Mutex<u64>,
}

// Page table descriptor bits (VMSAv8-64).
pub const TABLE: u64 = 0b11;
pub const PAGE: u64 = 0b11;
pub const BLOCK: u64 = 0b01;
pub const AF: u64 = 1 << 10;
/// Stage 1 AP[1] = 1: EL0 (unprivileged) access allowed; AP[2] = 1 read-only.
pub const AP_UNPRIV: u64 = 1 << 6;
pub const AP_RO: u64 = 1 << 7;
/// Stage 2 S2AP read / write.
pub const S2_R: u64 = 1 << 6;
pub const S2_W: u64 = 1 << 7;
/// Stage 1 read-write leaf attributes for unprivileged requests.
pub const S1_RW: u64 = AF | AP_UNPRIV;
pub const S2_RW: u64 = AF | S2_R | S2_W;

impl Rig {
    pub fn new(cfg: Smmuv3Config) -> Self {
        let mem = Arc::new(TestMemory::new(MEM_SIZE));
        let irq = Arc::new(Msis::default());
        let smmu = Smmuv3::new(cfg, mem.clone(), irq.clone());
        Self {
            smmu,
            mem,
            irq,
            next: Mutex::new(POOL),
        }
    }

    pub fn r32(&self, off: u64) -> u32 {
        self.smmu.read32(off)
    }

    pub fn r64(&self, off: u64) -> u64 {
        self.smmu.read64(off)
    }

    pub fn w32(&self, off: u64, v: u32) {
        self.smmu.write32(off, v);
    }

    pub fn w64(&self, off: u64, v: u64) {
        self.smmu.write64(off, v);
    }

    /// A zeroed, `size`-aligned block from the pool.
    pub fn alloc(&self, size: u64) -> u64 {
        let mut n = self.next.lock().unwrap();
        let a = (*n + size - 1) & !(size - 1);
        *n = a + size;
        assert!(*n <= MEM_SIZE as u64, "test pool exhausted");
        a
    }

    /// Writes CR0 and checks CR0ACK follows, as `arm_smmu_write_reg_sync` polls.
    pub fn cr0(&self, v: u32) {
        self.w32(CR0, v);
        assert_eq!(self.r32(CR0ACK), v, "CR0ACK");
    }

    /// Linux's probe + `arm_smmu_device_reset` order: IDRs, disable, CR1/CR2, stream table, queues,
    /// CMDQEN, CFGI_ALL + TLBI_NSNH_ALL + CMD_SYNC, EVTQEN, IRQs, SMMUEN.
    pub fn bringup(&self, two_level: bool) {
        let idr0 = self.r32(IDR0);
        let idr1 = self.r32(IDR1);
        assert_ne!(idr0 & (IDR0_S1P | IDR0_S2P), 0);
        assert!((idr1 >> 21) & 0x1f >= CMDQ_LOG2);
        self.cr0(0);
        self.w32(CR1, 0xd75); // table/queue: inner shareable, write-back
        self.w32(CR2, 0b110); // PTM | RECINVSID
        let sid_bits = idr1 & 0x3f;
        if two_level {
            self.w64(STRTAB_BASE, STRTAB | STRTAB_BASE_RA);
            self.w32(STRTAB_BASE_CFG, 1 << 16 | 8 << 6 | sid_bits);
        } else {
            self.w64(STRTAB_BASE, STRTAB | STRTAB_BASE_RA);
            self.w32(STRTAB_BASE_CFG, sid_bits.min(8));
        }
        self.w64(CMDQ_BASE, CMDQ | 1 << 62 | u64::from(CMDQ_LOG2));
        self.w32(CMDQ_PROD, 0);
        self.w32(CMDQ_CONS, 0);
        self.w64(EVTQ_BASE, EVTQ | 1 << 62 | u64::from(EVTQ_LOG2));
        self.w32(PAGE1 + EVTQ_PROD, 0);
        self.w32(PAGE1 + EVTQ_CONS, 0);
        self.cr0(CR0_CMDQEN);
        self.cmd(0x4, 31); // CFGI_ALL
        self.cmd(0x30, 0); // TLBI_NSNH_ALL
        self.sync();
        self.cr0(CR0_CMDQEN | CR0_EVTQEN);
        self.w64(GERROR_IRQ_CFG0, GERROR_MSI);
        self.w32(GERROR_IRQ_CFG1, 0x41);
        self.w64(EVTQ_IRQ_CFG0, EVTQ_MSI);
        self.w32(EVTQ_IRQ_CFG1, 0x42);
        self.w32(IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_EVTQ_IRQEN);
        assert_eq!(self.r32(IRQ_CTRLACK), 0b101);
        self.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    }

    /// Queues one command at PROD and publishes it (Linux's wrap arithmetic: index + wrap bit).
    pub fn cmd(&self, w0: u64, w1: u64) {
        let prod = self.r32(CMDQ_PROD);
        let idx = u64::from(prod & ((1 << CMDQ_LOG2) - 1));
        self.mem.write_u64(CMDQ + idx * 16, w0).unwrap();
        self.mem.write_u64(CMDQ + idx * 16 + 8, w1).unwrap();
        let next = (prod + 1) & ((2 << CMDQ_LOG2) - 1);
        self.w32(CMDQ_PROD, next);
    }

    /// CMD_SYNC with MSI polling as Linux does it (`arm_smmu_cmdq_build_sync_cmd`,
    /// `__arm_smmu_cmdq_poll_until_msi`): CS = SIG_IRQ, MSIAddr = the command's own slot, MSIData =
    /// 0; completion is the slot's first word reading 0. Asserts completion.
    pub fn sync(&self) {
        let prod = self.r32(CMDQ_PROD);
        let slot = CMDQ + u64::from(prod & ((1 << CMDQ_LOG2) - 1)) * 16;
        self.cmd(0x46 | 1 << 12, slot);
        let mut b = [0u8; 4];
        self.mem.read(slot, &mut b).unwrap();
        assert_eq!(
            u32::from_le_bytes(b),
            0,
            "CMD_SYNC MSI write landed in the slot"
        );
        assert_eq!(
            self.r32(CMDQ_CONS) & 0x1ff,
            self.r32(CMDQ_PROD),
            "queue drained"
        );
    }

    /// The address of `sid`'s STE, creating the L2 table (SPAN = 9: 256 STEs) in 2-level mode.
    pub fn ste_addr(&self, sid: u32) -> u64 {
        let cfg = self.r32(STRTAB_BASE_CFG);
        if (cfg >> 16) & 3 == 1 {
            let l1 = STRTAB + u64::from(sid >> 8) * 8;
            let mut d = self.mem.read_u64(l1).unwrap();
            if d == 0 {
                d = self.alloc(256 * 64) | 9;
                self.mem.write_u64(l1, d).unwrap();
            }
            (d & !0x3f) + u64::from(sid & 0xff) * 64
        } else {
            STRTAB + u64::from(sid) * 64
        }
    }

    pub fn write_ste(&self, sid: u32, w: [u64; 8]) {
        let a = self.ste_addr(sid);
        for (i, v) in w.iter().enumerate() {
            self.mem.write_u64(a + 8 * i as u64, *v).unwrap();
        }
    }

    pub fn write_words(&self, a: u64, w: &[u64]) {
        for (i, v) in w.iter().enumerate() {
            self.mem.write_u64(a + 8 * i as u64, *v).unwrap();
        }
    }

    /// Maps `iova` -> `pa` with a leaf at `level` (3: 4K page, 2: 2M block) in the 4K-granule,
    /// 48-bit table rooted at `root` (allocating tables), `attrs` on the leaf.
    pub fn map4k(&self, root: u64, iova: u64, pa: u64, level: u8, attrs: u64) {
        let mut table = root;
        for l in 0..level {
            let idx = (iova >> (39 - 9 * u32::from(l))) & 0x1ff;
            let a = table + idx * 8;
            let mut d = self.mem.read_u64(a).unwrap();
            if d & 3 != 3 {
                d = self.alloc(0x1000) | TABLE;
                self.mem.write_u64(a, d).unwrap();
            }
            table = d & 0x0000_ffff_ffff_f000;
        }
        let idx = (iova >> (39 - 9 * u32::from(level))) & 0x1ff;
        let kind = if level == 3 { PAGE } else { BLOCK };
        self.mem
            .write_u64(table + idx * 8, pa | kind | attrs)
            .unwrap();
    }

    /// Maps one page `iova` -> `pa` in a table of `geometry` = (granule shift `g`, input bits `ias`,
    /// start level), leaf at level 3.
    pub fn map_gran(&self, root: u64, geometry: (u32, u32, u8), iova: u64, pa: u64, attrs: u64) {
        let (g, ias, start) = geometry;
        let stride = g - 3;
        let shift = |l: u8| g + u32::from(3 - l) * stride;
        let mut table = root;
        for l in start..=3 {
            let bits = if l == start { ias - shift(l) } else { stride };
            let idx = (iova >> shift(l)) & ((1 << bits) - 1);
            let a = table + idx * 8;
            if l == 3 {
                self.mem.write_u64(a, pa | PAGE | attrs).unwrap();
                return;
            }
            let mut d = self.mem.read_u64(a).unwrap();
            if d & 3 != 3 {
                d = self.alloc(1 << g) | TABLE;
                self.mem.write_u64(a, d).unwrap();
            }
            table = d & 0x0000_ffff_ffff_f000 & !((1u64 << g) - 1);
        }
    }

    pub fn translate(
        &self,
        sid: u32,
        ssid: Option<u32>,
        iova: u64,
        access: Access,
    ) -> Result<Translation, DmaFault> {
        self.smmu.translate(&DmaRequest {
            source_id: sid,
            pasid: ssid,
            iova,
            access,
            privileged: false,
            kind: crate::request::RequestKind::Untranslated,
        })
    }

    /// Output address of a successful translation of `iova`.
    pub fn pa(&self, sid: u32, ssid: Option<u32>, iova: u64, access: Access) -> u64 {
        let t = self
            .translate(sid, ssid, iova, access)
            .unwrap_or_else(|f| panic!("translate {iova:#x}: {f}"));
        t.translate(iova)
    }

    /// Event records between CONS and PROD, consumed (CONS advanced as Linux's evtq thread does).
    pub fn events(&self) -> Vec<[u64; 4]> {
        let mut out = Vec::new();
        let mask = (2u32 << EVTQ_LOG2) - 1;
        let idx = (1u32 << EVTQ_LOG2) - 1;
        let prod = self.r32(PAGE1 + EVTQ_PROD);
        let mut cons = self.r32(PAGE1 + EVTQ_CONS);
        while (cons & mask) != (prod & mask) {
            let a = EVTQ + u64::from(cons & idx) * 32;
            let mut r = [0u64; 4];
            for (i, w) in r.iter_mut().enumerate() {
                *w = self.mem.read_u64(a + 8 * i as u64).unwrap();
            }
            out.push(r);
            cons = (cons & Q_OVF) | ((cons + 1) & mask);
        }
        // Acknowledge overflow the way Linux does: OVACKFLG follows OVFLG.
        self.w32(PAGE1 + EVTQ_CONS, (prod & Q_OVF) | (cons & mask));
        out
    }
}

/// STE dword 0 for `config` (0b100 bypass, 0b101 S1, 0b110 S2, 0b111 nested) with V set.
pub fn ste0(config: u64) -> u64 {
    1 | config << 1
}

/// A 4K-granule stage 2 STE dword 2: VMID, S2T0SZ = 64 - 48 (start level 0 with SL0 = 2), S2PS = 48
/// bits, AA64, S2R.
pub fn ste2_s2(vmid: u16) -> u64 {
    u64::from(vmid) | (16u64 << 32) | (2u64 << 38) | (5u64 << 48) | 1 << 51 | 1 << 58
}

/// A CD dword 0: T0SZ = 16 (48-bit), TG0 = 4K, EPD1, V, IPS = 48 bits, AA64, R, A, ASID.
pub fn cd0(asid: u16) -> u64 {
    16 | 1 << 30 | 1 << 31 | 5u64 << 32 | 1 << 41 | 1 << 45 | 1 << 46 | u64::from(asid) << 48
}
