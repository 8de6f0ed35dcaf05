//! The bring-up driver: probe, reset and enable in the order of Linux 6.12's arm_smmu_device_hw_probe /
//! arm_smmu_init_structures / arm_smmu_device_reset, then STE/CD installation, command issue with CMD_SYNC
//! MSI polling (as arm_smmu_cmdq_poll_until_msi) and the event queue reader. Polls are bounded (1 s, Linux's
//! ARM_SMMU_POLL_TIMEOUT_US) and end in an error naming the register.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::super::alloc::{zalloc, PageAlloc};
use super::super::backend::Backend;
use super::commands::{self, Cmd, SyncSignal};
use super::events::Event;
use super::features::Features;
use super::regs::*;

/// How long a register or memory poll may take.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// Stream table format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrtabFmt {
    Linear,
    TwoLevel,
}

/// Bring-up choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `None`: two-level if IDR0.ST_LEVEL says so, else linear (as Linux).
    pub strtab: Option<StrtabFmt>,
    /// log2 of the event queue's entries (capped by IDR1.EVTQS).
    pub evtq_log2: u32,
    /// log2 of the command queue's entries (capped by IDR1.CMDQS).
    pub cmdq_log2: u32,
    /// Program GERROR/EVTQ MSIs at words of the driver's scratch page and enable them in IRQ_CTRL.
    pub irqs: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            strtab: None,
            evtq_log2: 7,
            cmdq_log2: 8,
            irqs: true,
        }
    }
}

/// One of the SMMU's circular queues in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    pub base: u64,
    pub log2: u32,
    /// Entry size in bytes.
    pub ent: u64,
    /// Software's index: wrap bit at `log2`, index below (plus OVACKFLG for the event queue).
    pub prod: u32,
    pub cons: u32,
}

impl Queue {
    pub fn entries(&self) -> u32 {
        1 << self.log2
    }

    /// Index + wrap bits of a PROD/CONS value.
    pub fn mask(&self) -> u32 {
        (2 << self.log2) - 1
    }

    pub fn idx(&self, p: u32) -> u32 {
        p & (self.entries() - 1)
    }

    pub fn next(&self, p: u32) -> u32 {
        (p & !self.mask()) | ((p + 1) & self.mask())
    }

    /// Entries between `cons` and `prod` (both index + wrap).
    pub fn used(&self, prod: u32, cons: u32) -> u32 {
        (prod.wrapping_sub(cons)) & self.mask()
    }

    pub fn slot(&self, p: u32) -> u64 {
        self.base + u64::from(self.idx(p)) * self.ent
    }

    /// The BASE register value.
    pub fn base_reg(&self) -> u64 {
        q::BASE_RWA | (self.base & q::BASE_ADDR_MASK) | u64::from(self.log2)
    }
}

/// The stream table as programmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strtab {
    pub fmt: StrtabFmt,
    pub base: u64,
    /// STRTAB_BASE_CFG.LOG2SIZE: StreamIDs covered.
    pub log2size: u32,
    pub split: u32,
    /// Level-2 tables by L1 index.
    pub l2: BTreeMap<u32, u64>,
}

/// A context-descriptor table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdTable {
    /// Physical address (level 1 for two-level tables).
    pub base: u64,
    /// STE.S1CDMax: SSID bits (0 = one CD, no substreams).
    pub s1cdmax: u32,
    /// STE.S1Fmt.
    pub fmt: u64,
    /// Level-2 tables by L1 index.
    pub l2: BTreeMap<u32, u64>,
    /// Added to table addresses the SMMU is given (nested: IPA of the tables).
    pub addr_offset: u64,
}

/// What a bring-up or a command reported besides success.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    pub lines: Vec<String>,
}

/// Physical layout of the scratch page (MSI targets).
pub mod scratch {
    pub const GERROR_MSI: u64 = 0x00;
    pub const EVTQ_MSI: u64 = 0x08;
    pub const SYNC_MSI: u64 = 0x10;
    pub const GERROR_MSI_DATA: u32 = 0x6e72_7265;
    pub const EVTQ_MSI_DATA: u32 = 0x7174_7665;
}

/// The driver.
pub struct Driver {
    pub b: Box<dyn Backend>,
    pub alloc: PageAlloc,
    pub feat: Features,
    pub opts: Options,
    pub cmdq: Queue,
    pub evtq: Queue,
    pub priq: Option<Queue>,
    pub strtab: Strtab,
    /// CR0 bits enabled so far.
    pub enables: u32,
    /// Scratch page: MSI targets.
    pub scratch: u64,
    /// Event queue overflows seen by [`Driver::read_events`].
    pub overflows: u32,
    pub log: Log,
}

impl Driver {
    /// Probes the ID registers (arm_smmu_device_hw_probe); touches no state.
    pub fn probe(mut b: Box<dyn Backend>) -> Result<Driver, String> {
        let feat = Features::read(&mut *b)?;
        let alloc = PageAlloc::new(b.mem_base(), b.mem_size());
        let empty = Queue {
            base: 0,
            log2: 0,
            ent: 16,
            prod: 0,
            cons: 0,
        };
        Ok(Driver {
            b,
            alloc,
            feat,
            opts: Options::default(),
            cmdq: empty,
            evtq: empty,
            priq: None,
            strtab: Strtab {
                fmt: StrtabFmt::Linear,
                base: 0,
                log2size: 0,
                split: 0,
                l2: BTreeMap::new(),
            },
            enables: 0,
            scratch: 0,
            overflows: 0,
            log: Log::default(),
        })
    }

    /// Polls `f` until it returns `Some`, for at most [`POLL_TIMEOUT`].
    pub fn poll<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Self) -> Result<Option<T>, String>,
    ) -> Result<T, String> {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self)? {
                return Ok(v);
            }
            if start.elapsed() > POLL_TIMEOUT {
                return Err(format!(
                    "timed out after {POLL_TIMEOUT:?} waiting for {what}"
                ));
            }
            self.b.relax();
        }
    }

    /// Writes `val` to `reg` and waits for `ack` to read the same (arm_smmu_write_reg_sync).
    pub fn write_reg_sync(&mut self, reg: u64, ack: u64, val: u32) -> Result<(), String> {
        self.b.mmio_write32(reg, val);
        self.poll(&format!("register {ack:#x} to acknowledge {val:#x}"), |d| {
            let a = d.b.mmio_read32(ack);
            Ok((a == val).then_some(()))
        })
    }

    /// CR0 = 0 and wait for CR0ACK (arm_smmu_device_disable).
    pub fn disable(&mut self) -> Result<(), String> {
        self.write_reg_sync(CR0, CR0ACK, 0)?;
        self.enables = 0;
        Ok(())
    }

    /// Full bring-up with `opts`: every structure is allocated afresh in the RAM window.
    pub fn bring_up(&mut self, opts: Options) -> Result<(), String> {
        self.opts = opts;
        self.feat = Features::read(&mut *self.b)?;
        self.alloc.reset();
        self.overflows = 0;
        // arm_smmu_device_reset: an enabled SMMU is first told to abort incoming traffic, then disabled.
        if self.b.mmio_read32(CR0) & cr0::SMMUEN != 0 {
            self.log.lines.push("SMMU was enabled: resetting".into());
            self.update_gbpa(gbpa::ABORT, 0)?;
        }
        self.disable()?;
        // A global error an earlier user left active would stop the command queue at once.
        let stale = self.active_gerror();
        if stale != 0 {
            self.log
                .lines
                .push(format!("acknowledging stale GERROR bits {stale:#x}"));
            self.ack_gerror(stale)?;
        }
        self.scratch = zalloc(&mut *self.b, &mut self.alloc, 0x1000, 0x1000)?;
        self.init_queues()?;
        self.init_strtab()?;
        // CR1: table and queue attributes; CR2: PTM | RECINVSID (E2H only with HYP and VHE, not here).
        self.b.mmio_write32(CR1, cr1::LINUX_DEFAULT);
        self.b.mmio_write32(CR2, cr2::PTM | cr2::RECINVSID);
        self.b.mmio_write64(STRTAB_BASE, self.strtab_base_reg());
        self.b.mmio_write32(STRTAB_BASE_CFG, self.strtab_cfg_reg());
        // Command queue.
        self.b.mmio_write64(CMDQ_BASE, self.cmdq.base_reg());
        self.b.mmio_write32(CMDQ_PROD, self.cmdq.prod);
        self.b.mmio_write32(CMDQ_CONS, self.cmdq.cons);
        self.enables = cr0::CMDQEN;
        self.write_reg_sync(CR0, CR0ACK, self.enables)?;
        self.issue_sync(&[commands::cfgi_all()])?;
        if self.feat.hyp {
            self.issue(&commands::tlbi_el2_all())?;
        }
        self.issue_sync(&[commands::tlbi_nsnh_all()])?;
        // Event queue (PROD/CONS in page 1).
        self.b.mmio_write64(EVTQ_BASE, self.evtq.base_reg());
        self.b.mmio_write32(EVTQ_PROD, self.evtq.prod);
        self.b.mmio_write32(EVTQ_CONS, self.evtq.cons);
        self.enables |= cr0::EVTQEN;
        self.write_reg_sync(CR0, CR0ACK, self.enables)?;
        if let Some(pq) = self.priq {
            self.b.mmio_write64(PRIQ_BASE, pq.base_reg());
            self.b.mmio_write32(PRIQ_PROD, pq.prod);
            self.b.mmio_write32(PRIQ_CONS, pq.cons);
            self.enables |= cr0::PRIQEN;
            self.write_reg_sync(CR0, CR0ACK, self.enables)?;
        }
        self.setup_irqs()?;
        self.enables |= cr0::SMMUEN;
        self.write_reg_sync(CR0, CR0ACK, self.enables)
            .map_err(|e| format!("SMMUEN: {e}"))?;
        Ok(())
    }

    /// GBPA update handshake (arm_smmu_update_gbpa): wait UPDATE clear, write with UPDATE, wait clear.
    pub fn update_gbpa(&mut self, set: u32, clr: u32) -> Result<(), String> {
        self.poll("GBPA.UPDATE to clear", |d| {
            Ok((d.b.mmio_read32(GBPA) & gbpa::UPDATE == 0).then_some(()))
        })?;
        let v = (self.b.mmio_read32(GBPA) & !clr) | set;
        self.b.mmio_write32(GBPA, v | gbpa::UPDATE);
        self.poll("GBPA.UPDATE to clear after the write", |d| {
            Ok((d.b.mmio_read32(GBPA) & gbpa::UPDATE == 0).then_some(()))
        })
    }

    fn init_queues(&mut self) -> Result<(), String> {
        let cl = self.opts.cmdq_log2.min(self.feat.cmdq_log2);
        let el = self.opts.evtq_log2.min(self.feat.evtq_log2);
        self.cmdq = self.alloc_queue(cl, q::CMD_SIZE)?;
        self.evtq = self.alloc_queue(el, q::EVT_SIZE)?;
        self.priq = if self.feat.pri {
            Some(self.alloc_queue(self.feat.priq_log2.min(6), 16)?)
        } else {
            None
        };
        Ok(())
    }

    fn alloc_queue(&mut self, log2: u32, ent: u64) -> Result<Queue, String> {
        let bytes = (ent << log2).max(32);
        let base = zalloc(&mut *self.b, &mut self.alloc, bytes, bytes)?;
        Ok(Queue {
            base,
            log2,
            ent,
            prod: 0,
            cons: 0,
        })
    }

    /// arm_smmu_init_strtab: linear covers 2^min(SIDSIZE, 8) StreamIDs (enough for bus 0); two-level covers
    /// 2^SIDSIZE with 256-entry level-2 tables, allocated lazily.
    fn init_strtab(&mut self) -> Result<(), String> {
        let fmt = match self.opts.strtab {
            Some(f) => f,
            None if self.feat.two_level_strtab => StrtabFmt::TwoLevel,
            None => StrtabFmt::Linear,
        };
        if fmt == StrtabFmt::TwoLevel && !self.feat.two_level_strtab {
            return Err(
                "two-level stream table requested but IDR0.ST_LEVEL says linear only".into(),
            );
        }
        let sid_bits = self.feat.sid_bits;
        self.strtab = match fmt {
            StrtabFmt::Linear => {
                let log2size = sid_bits.min(8);
                let bytes = strtab::STE_SIZE << log2size;
                let base = zalloc(&mut *self.b, &mut self.alloc, bytes, bytes)?;
                for sid in 0..(1u32 << log2size) {
                    self.write_ste_raw(base + u64::from(sid) * strtab::STE_SIZE, &ste_abort())?;
                }
                Strtab {
                    fmt,
                    base,
                    log2size,
                    split: 0,
                    l2: BTreeMap::new(),
                }
            }
            StrtabFmt::TwoLevel => {
                let split = strtab::SPLIT.min(sid_bits);
                let l1_entries = 1u64 << (sid_bits - split);
                let bytes = (l1_entries * 8).max(64);
                let base = zalloc(&mut *self.b, &mut self.alloc, bytes, bytes)?;
                Strtab {
                    fmt,
                    base,
                    log2size: sid_bits,
                    split,
                    l2: BTreeMap::new(),
                }
            }
        };
        Ok(())
    }

    fn strtab_base_reg(&self) -> u64 {
        strtab::BASE_RA | (self.strtab.base & 0x000f_ffff_ffff_ffc0)
    }

    fn strtab_cfg_reg(&self) -> u32 {
        match self.strtab.fmt {
            StrtabFmt::Linear => self.strtab.log2size,
            StrtabFmt::TwoLevel => {
                (strtab::FMT_2LVL << strtab::FMT_SHIFT)
                    | (self.strtab.split << strtab::SPLIT_SHIFT)
                    | self.strtab.log2size
            }
        }
    }

    /// arm_smmu_setup_irqs: IRQ_CTRL off, MSI addresses at the scratch page, then GERROR|EVTQ enabled.
    fn setup_irqs(&mut self) -> Result<(), String> {
        self.write_reg_sync(IRQ_CTRL, IRQ_CTRLACK, 0)?;
        if !self.opts.irqs {
            return Ok(());
        }
        if self.feat.msi {
            let s = self.scratch;
            for (cfg0, off, data) in [
                (
                    GERROR_IRQ_CFG0,
                    scratch::GERROR_MSI,
                    scratch::GERROR_MSI_DATA,
                ),
                (EVTQ_IRQ_CFG0, scratch::EVTQ_MSI, scratch::EVTQ_MSI_DATA),
            ] {
                self.b.mmio_write64(cfg0, (s + off) & 0x000f_ffff_ffff_fffc);
                self.b.mmio_write32(cfg0 + 8, data);
                // CFG2: inner shareable, inner/outer write-back memory.
                self.b.mmio_write32(cfg0 + 12, (3 << 4) | 0xf);
            }
        }
        let mut en = irq_ctrl::GERROR_IRQEN | irq_ctrl::EVTQ_IRQEN;
        if self.priq.is_some() {
            en |= irq_ctrl::PRIQ_IRQEN;
        }
        self.write_reg_sync(IRQ_CTRL, IRQ_CTRLACK, en)
    }

    // ---- stream table ----

    fn write_ste_raw(&mut self, pa: u64, ste: &[u64; 8]) -> Result<(), String> {
        // Everything but dword 0 first, then dword 0 (which holds V): an SMMU fetching concurrently sees the
        // old or the new entry's validity (a simplified arm_smmu_write_ste).
        for (i, d) in ste.iter().enumerate().skip(1) {
            self.b.mem_write_u64(pa + 8 * i as u64, *d)?;
        }
        self.b.mem_write_u64(pa, ste[0])
    }

    /// Address of `sid`'s STE, creating its level-2 table (all STEs abort, as Linux's disable_bypass) and
    /// level-1 descriptor when needed.
    pub fn ste_addr(&mut self, sid: u32) -> Result<u64, String> {
        if u64::from(sid) >> self.strtab.log2size != 0 {
            return Err(format!(
                "StreamID {sid:#x} is beyond the stream table (2^{})",
                self.strtab.log2size
            ));
        }
        match self.strtab.fmt {
            StrtabFmt::Linear => Ok(self.strtab.base + u64::from(sid) * strtab::STE_SIZE),
            StrtabFmt::TwoLevel => {
                let split = self.strtab.split;
                let l1 = sid >> split;
                let l2 = match self.strtab.l2.get(&l1) {
                    Some(&t) => t,
                    None => {
                        let bytes = strtab::STE_SIZE << split;
                        let t = zalloc(&mut *self.b, &mut self.alloc, bytes, bytes)?;
                        for i in 0..(1u64 << split) {
                            self.write_ste_raw(t + i * strtab::STE_SIZE, &ste_abort())?;
                        }
                        // L1 descriptor: Span = split + 1 (bits 4:0), L2Ptr bits 51:6 (§5.2 "Level 1 Stream
                        // Table Descriptor").
                        let desc = u64::from(split + 1) | (t & 0x000f_ffff_ffff_ffc0);
                        self.b
                            .mem_write_u64(self.strtab.base + 8 * u64::from(l1), desc)?;
                        self.strtab.l2.insert(l1, t);
                        t
                    }
                };
                Ok(l2 + u64::from(sid & ((1 << split) - 1)) * strtab::STE_SIZE)
            }
        }
    }

    /// Writes `sid`'s STE; with `invalidate`, follows it with CFGI_STE + CMD_SYNC.
    pub fn install_ste(
        &mut self,
        sid: u32,
        ste: &[u64; 8],
        invalidate: bool,
    ) -> Result<(), String> {
        let pa = self.ste_addr(sid)?;
        self.write_ste_raw(pa, ste)?;
        if invalidate {
            self.issue_sync(&[commands::cfgi_ste(sid)])?;
        }
        Ok(())
    }

    // ---- context descriptors ----

    /// A CD table for 2^`s1cdmax` substreams: linear, or two-level (4 KiB leaves of 64 CDs) when `two_level`.
    /// `addr_offset` is added to every address given to the SMMU (nested: the tables' IPA).
    pub fn new_cd_table(
        &mut self,
        s1cdmax: u32,
        two_level: bool,
        addr_offset: u64,
    ) -> Result<CdTable, String> {
        if two_level {
            let l1_entries = (1u64 << s1cdmax).div_ceil(u64::from(cd::L2_ENTRIES));
            let base = zalloc(&mut *self.b, &mut self.alloc, l1_entries * 8, 64)?;
            Ok(CdTable {
                base,
                s1cdmax,
                fmt: ste::S1FMT_4K_L2,
                l2: BTreeMap::new(),
                addr_offset,
            })
        } else {
            let bytes = cd::SIZE << s1cdmax;
            let base = zalloc(&mut *self.b, &mut self.alloc, bytes, 64)?;
            Ok(CdTable {
                base,
                s1cdmax,
                fmt: ste::S1FMT_LINEAR,
                l2: BTreeMap::new(),
                addr_offset,
            })
        }
    }

    /// Physical address of the CD for `ssid` in `t`.
    pub fn cd_addr(&mut self, t: &mut CdTable, ssid: u32) -> Result<u64, String> {
        if u64::from(ssid) >> t.s1cdmax != 0 {
            return Err(format!(
                "SSID {ssid:#x} is beyond the CD table (2^{})",
                t.s1cdmax
            ));
        }
        if t.fmt == ste::S1FMT_LINEAR {
            return Ok(t.base + u64::from(ssid) * cd::SIZE);
        }
        let l1 = ssid / cd::L2_ENTRIES;
        let l2 = match t.l2.get(&l1) {
            Some(&p) => p,
            None => {
                let p = zalloc(&mut *self.b, &mut self.alloc, 0x1000, 0x1000)?;
                let desc = ((p + t.addr_offset) & cd::L1_PTR_MASK) | cd::L1_V;
                self.b.mem_write_u64(t.base + 8 * u64::from(l1), desc)?;
                t.l2.insert(l1, p);
                p
            }
        };
        Ok(l2 + u64::from(ssid % cd::L2_ENTRIES) * cd::SIZE)
    }

    /// Writes the CD for `ssid` (dword 0, with V, last).
    pub fn write_cd(&mut self, t: &mut CdTable, ssid: u32, cd: &[u64; 8]) -> Result<u64, String> {
        let pa = self.cd_addr(t, ssid)?;
        for (i, d) in cd.iter().enumerate().skip(1) {
            self.b.mem_write_u64(pa + 8 * i as u64, *d)?;
        }
        self.b.mem_write_u64(pa, cd[0])?;
        Ok(pa)
    }

    // ---- command queue ----

    fn check_cmdq_error(&mut self) -> Result<(), String> {
        let gerror = self.b.mmio_read32(GERROR);
        let gerrorn = self.b.mmio_read32(GERRORN);
        if (gerror ^ gerrorn) & gerror::CMDQ_ERR != 0 {
            let cons = self.b.mmio_read32(CMDQ_CONS);
            return Err(format!(
                "command queue error: GERROR {gerror:#x} GERRORN {gerrorn:#x} CMDQ_CONS {cons:#x} (ERR {})",
                (cons & q::CONS_ERR_MASK) >> q::CONS_ERR_SHIFT
            ));
        }
        Ok(())
    }

    /// Appends one command and publishes PROD (waits for space); fails while a command error is active.
    pub fn issue(&mut self, cmd: &Cmd) -> Result<(), String> {
        self.check_cmdq_error()?;
        self.issue_raw(cmd)
    }

    /// [`Driver::issue`] without the command-error check (to queue behind a command known to be bad).
    pub fn issue_raw(&mut self, cmd: &Cmd) -> Result<(), String> {
        let cq = self.cmdq;
        self.poll("command queue space", |d| {
            let cons = d.b.mmio_read32(CMDQ_CONS) & cq.mask();
            d.cmdq.cons = cons;
            Ok((cq.used(d.cmdq.prod, cons) < cq.entries()).then_some(()))
        })?;
        let slot = self.cmdq.slot(self.cmdq.prod);
        self.b.mem_write_u64(slot, cmd[0])?;
        self.b.mem_write_u64(slot + 8, cmd[1])?;
        self.cmdq.prod = self.cmdq.next(self.cmdq.prod);
        self.b.mmio_write32(CMDQ_PROD, self.cmdq.prod);
        Ok(())
    }

    /// Issues `cmds` followed by a CMD_SYNC whose MSI (data 0) is written over the CMD_SYNC's own first word,
    /// and waits for that word to read 0 (arm_smmu_cmdq_poll_until_msi), then for CONS to pass the sync.
    pub fn issue_sync(&mut self, cmds: &[Cmd]) -> Result<(), String> {
        for c in cmds {
            self.issue(c)?;
        }
        let slot = self.cmdq.slot(self.cmdq.prod);
        self.issue(&commands::cmd_sync(SyncSignal::Msi {
            addr: slot,
            data: 0,
        }))?;
        let prod = self.cmdq.prod;
        self.poll("CMD_SYNC completion (MSI write over the command)", |d| {
            d.check_cmdq_error()?;
            Ok((d.b.mem_read_u32(slot)? == 0).then_some(()))
        })?;
        self.poll("CMDQ_CONS to reach PROD after CMD_SYNC", |d| {
            d.check_cmdq_error()?;
            let cons = d.b.mmio_read32(CMDQ_CONS);
            d.cmdq.cons = cons & d.cmdq.mask();
            Ok((d.cmdq.used(prod, d.cmdq.cons) == 0).then_some(()))
        })
    }

    /// Waits for CONS to stop at an error, then returns (CONS, CONS.ERR, GERROR).
    pub fn wait_cmdq_error(&mut self) -> Result<(u32, u32, u32), String> {
        self.poll("GERROR.CMDQ_ERR", |d| {
            let gerror = d.b.mmio_read32(GERROR);
            let gerrorn = d.b.mmio_read32(GERRORN);
            if (gerror ^ gerrorn) & gerror::CMDQ_ERR == 0 {
                return Ok(None);
            }
            let cons = d.b.mmio_read32(CMDQ_CONS);
            Ok(Some((
                cons,
                (cons & q::CONS_ERR_MASK) >> q::CONS_ERR_SHIFT,
                gerror,
            )))
        })
    }

    /// Recovers from CERROR_ILL as arm_smmu_cmdq_skip_err does: the offending command is replaced with a
    /// CMD_SYNC (no signal) and GERRORN acknowledges the error, so the SMMU resumes at CONS.
    pub fn skip_cmdq_error(&mut self) -> Result<(), String> {
        let cons = self.b.mmio_read32(CMDQ_CONS);
        let slot = self.cmdq.slot(cons);
        let sync = commands::cmd_sync(SyncSignal::None);
        self.b.mem_write_u64(slot, sync[0])?;
        self.b.mem_write_u64(slot + 8, sync[1])?;
        self.ack_gerror(gerror::CMDQ_ERR)
    }

    /// Acknowledges the active GERROR bits in `bits` by toggling them in GERRORN.
    pub fn ack_gerror(&mut self, bits: u32) -> Result<(), String> {
        let gerror = self.b.mmio_read32(GERROR);
        let gerrorn = self.b.mmio_read32(GERRORN);
        let active = (gerror ^ gerrorn) & bits;
        self.b.mmio_write32(GERRORN, gerrorn ^ active);
        let after = self.b.mmio_read32(GERRORN);
        if (self.b.mmio_read32(GERROR) ^ after) & active != 0 {
            return Err(format!(
                "GERRORN write {:#x} did not acknowledge {active:#x}",
                gerrorn ^ active
            ));
        }
        Ok(())
    }

    /// Active global errors (GERROR ^ GERRORN).
    pub fn active_gerror(&mut self) -> u32 {
        (self.b.mmio_read32(GERROR) ^ self.b.mmio_read32(GERRORN)) & gerror::ERR_MASK
    }

    // ---- event queue ----

    /// Reads every pending event record and advances CONS; an overflow (PROD.OVFLG != CONS.OVACKFLG) is
    /// counted and acknowledged (queue_sync_cons_ovf).
    pub fn read_events(&mut self) -> Result<Vec<Event>, String> {
        let prod_reg = self.b.mmio_read32(EVTQ_PROD);
        let eq = self.evtq;
        let mut cons = self.b.mmio_read32(EVTQ_CONS);
        let ovack = cons & q::OVF;
        let prod = prod_reg & eq.mask();
        cons &= eq.mask();
        let mut out = Vec::new();
        while eq.used(prod, cons) != 0 {
            let slot = eq.slot(cons);
            let mut raw = [0u64; 4];
            for (i, r) in raw.iter_mut().enumerate() {
                *r = self.b.mem_read_u64(slot + 8 * i as u64)?;
            }
            out.push(Event::decode(raw));
            cons = eq.next(cons);
            if out.len() > eq.entries() as usize {
                return Err("event queue PROD ran ahead of the queue size".into());
            }
        }
        let new_ovack = if prod_reg & q::OVF != ovack {
            self.overflows += 1;
            prod_reg & q::OVF
        } else {
            ovack
        };
        self.evtq.cons = cons | new_ovack;
        self.b.mmio_write32(EVTQ_CONS, self.evtq.cons);
        Ok(out)
    }
}

// ---- STE / CD builders ----

/// STE: valid, abort (§5.2 Config 0b000: no traffic, no event).
pub fn ste_abort() -> [u64; 8] {
    [
        ste::V | (ste::CFG_ABORT << ste::CFG_SHIFT),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// STE: valid, bypass (Config 0b100), SHCFG incoming.
pub fn ste_bypass() -> [u64; 8] {
    [
        ste::V | (ste::CFG_BYPASS << ste::CFG_SHIFT),
        ste::SHCFG_INCOMING,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// Dword 0 and 1 of a stage-1 STE over CD table `t`.
fn ste_s1_words(t: &CdTable, s1dss: u64) -> (u64, u64) {
    let d0 = ((t.fmt & 3) << ste::S1FMT_SHIFT)
        | ((t.base + t.addr_offset) & ste::S1CTXPTR_MASK)
        | (u64::from(t.s1cdmax) << ste::S1CDMAX_SHIFT);
    let d1 = s1dss | ste::S1_CACHE_WB | ste::SHCFG_INCOMING;
    (d0, d1)
}

/// STE: stage 1 only (Config 0b101) with CD table `t`; non-substream traffic per `s1dss`.
pub fn ste_s1(t: &CdTable, s1dss: u64) -> [u64; 8] {
    let (d0, d1) = ste_s1_words(t, s1dss);
    [
        ste::V | (ste::CFG_S1 << ste::CFG_SHIFT) | d0,
        d1,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// Stage-2 STE fields (dwords 2 and 3) for tables `pt` and `vmid`, output size `ps_bits`.
pub fn s2_words(pt: &super::super::pgtable::PageTable, vmid: u16, ps_bits: u8) -> (u64, u64) {
    let sl0 = match pt.granule {
        // 4K: 0 = start at level 2, 1 = level 1, 2 = level 0. 16K/64K: 0 = level 3, 1 = level 2, 2 = level 1.
        super::super::pgtable::Granule::K4 => 2 - u64::from(pt.start_level()),
        _ => 3 - u64::from(pt.start_level()),
    };
    let vtcr = u64::from(64 - pt.ias)
        | (sl0 << 6)
        | (1 << 8)
        | (1 << 10)
        | (3 << 12)
        | (pt.granule.tg() << 14)
        | (idr5::encode_bits(ps_bits) << 16);
    let d2 = u64::from(vmid) | (vtcr << ste::VTCR_SHIFT) | ste::S2AA64 | ste::S2R;
    (d2, pt.ttb() & ste::S2TTB_MASK)
}

/// STE: stage 2 only (Config 0b110).
pub fn ste_s2(pt: &super::super::pgtable::PageTable, vmid: u16, ps_bits: u8) -> [u64; 8] {
    let (d2, d3) = s2_words(pt, vmid, ps_bits);
    [
        ste::V | (ste::CFG_S2 << ste::CFG_SHIFT),
        ste::SHCFG_INCOMING,
        d2,
        d3,
        0,
        0,
        0,
        0,
    ]
}

/// STE: nested (Config 0b111): stage 1 from `t` (whose addresses are IPAs), stage 2 from `pt`.
pub fn ste_nested(
    t: &CdTable,
    s1dss: u64,
    pt: &super::super::pgtable::PageTable,
    vmid: u16,
    ps_bits: u8,
) -> [u64; 8] {
    let (d0, d1) = ste_s1_words(t, s1dss);
    let (d2, d3) = s2_words(pt, vmid, ps_bits);
    [
        ste::V | (ste::CFG_NESTED << ste::CFG_SHIFT) | d0,
        d1,
        d2 | ste::S2PTW,
        d3,
        0,
        0,
        0,
        0,
    ]
}

/// CD for stage-1 tables `pt`, `asid`, output size `ips_bits` (arm_smmu_make_s1_cd).
pub fn cd_for(pt: &super::super::pgtable::PageTable, asid: u16, ips_bits: u8) -> [u64; 8] {
    let d0 = u64::from(64 - pt.ias)
        | (pt.granule.tg() << cd::TG0_SHIFT)
        | cd::WALK_WB
        | cd::EPD1
        | cd::V
        | (idr5::encode_bits(ips_bits) << cd::IPS_SHIFT)
        | cd::AA64
        | cd::R
        | cd::A
        | cd::ASET
        | (u64::from(asid) << cd::ASID_SHIFT);
    // MAIR: attribute 0 normal write-back (the leaves use AttrIndx 0).
    [d0, pt.ttb() & cd::TTB_MASK, 0, 0xff, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_index_arithmetic() {
        let q = Queue {
            base: 0x1000,
            log2: 2,
            ent: 16,
            prod: 0,
            cons: 0,
        };
        assert_eq!(q.mask(), 7);
        let mut p = 0;
        for _ in 0..4 {
            p = q.next(p);
        }
        assert_eq!(p, 4, "wrap bit set after one lap");
        assert_eq!(q.used(p, 0), 4, "full");
        assert_eq!(q.idx(p), 0);
        assert_eq!(q.next(7), 0);
        assert_eq!(q.used(1, 6), 3);
        assert_eq!(q.slot(5), 0x1010);
        assert_eq!(
            q.next(q::OVF | 3),
            q::OVF | 4,
            "flags above the index survive"
        );
        assert_eq!(q.base_reg(), q::BASE_RWA | 0x1000 | 2);
    }

    #[test]
    fn ste_layouts() {
        assert_eq!(ste_abort()[0], 1);
        assert_eq!(ste_bypass()[0], 0b1001);
        let t = CdTable {
            base: 0x1000_2000,
            s1cdmax: 6,
            fmt: ste::S1FMT_4K_L2,
            l2: BTreeMap::new(),
            addr_offset: 0,
        };
        let s = ste_s1(&t, ste::S1DSS_SSID0);
        assert_eq!(s[0] & 0xf, 0b1011, "V + Config 0b101");
        assert_eq!((s[0] >> 4) & 3, 1);
        assert_eq!(s[0] & ste::S1CTXPTR_MASK, 0x1000_2000);
        assert_eq!(s[0] >> 59, 6);
        assert_eq!(s[1] & 3, 2);
    }
}
