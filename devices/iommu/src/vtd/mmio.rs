//! The register file: byte-exact reads and writes of any size at any offset, split into naturally aligned
//! 32- and 64-bit registers. Reads have no side effects. A partial write merges into the register and
//! command bits act only when the byte holding them is written (so two 32-bit halves work like one
//! 64-bit write, low half first).

use super::regs;
use super::state::State;
use crate::mem::DmaMemory;

fn merge(old: u64, val: u64, mask: u64) -> u64 {
    (old & !mask) | (val & mask)
}

fn merge32(old: u32, val: u32, mask: u32) -> u32 {
    (old & !mask) | (val & mask)
}

/// Which fault recording register (and which qword of it) an offset falls in.
fn frcd_slot(off: u64, nfr: usize) -> Option<(usize, usize)> {
    let rel = off.checked_sub(regs::FRO_OFFSET)?;
    let index = (rel / regs::FRCD_SIZE) as usize;
    (index < nfr).then_some((index, ((rel % regs::FRCD_SIZE) / 8) as usize))
}

impl State {
    fn read32(&self, off: u64) -> u32 {
        match off {
            regs::VER => regs::VERSION,
            regs::GSTS => self.gsts,
            regs::FSTS => self.fault.fsts(),
            regs::FECTL => self.fault.fectl,
            regs::FEDATA => self.fault.fedata,
            regs::FEADDR => self.fault.feaddr,
            regs::FEUADDR => self.fault.feuaddr,
            regs::ICS => self.qi.ics,
            regs::IECTL => self.qi.iectl,
            regs::IEDATA => self.qi.iedata,
            regs::IEADDR => self.qi.ieaddr,
            regs::IEUADDR => self.qi.ieuaddr,
            // GCMD is write-only; everything else unimplemented reads 0.
            _ => 0,
        }
    }

    /// The naturally aligned qword at `off` (a multiple of 8 inside the window).
    pub(crate) fn read_qword(&self, off: u64) -> u64 {
        match off {
            regs::CAP => self.hw.cap,
            regs::ECAP => self.hw.ecap,
            regs::RTADDR => self.rtaddr,
            regs::CCMD => self.ccmd,
            regs::IQH => self.qi.iqh,
            regs::IQT => self.qi.iqt,
            regs::IQA => self.qi.iqa,
            regs::IQERCD => self.qi.iqercd,
            regs::IVA => self.iva,
            regs::IOTLB => self.iotlb_reg,
            regs::IRTA => self.read_irta(),
            _ => match frcd_slot(off, self.fault.nfr()) {
                Some((index, half)) => self.fault.read_record(index, half),
                None => u64::from(self.read32(off)) | u64::from(self.read32(off + 4)) << 32,
            },
        }
    }

    fn write32(&mut self, mem: &dyn DmaMemory, off: u64, val: u32, mask: u32) {
        match off {
            regs::GCMD => {
                // A full-state command register: unwritten bytes keep the current persistent state.
                let current =
                    self.gsts & (regs::GCMD_TE | regs::GCMD_QIE | regs::GCMD_IRE | regs::GCMD_CFI);
                self.write_gcmd(mem, merge32(current, val, mask));
            }
            regs::FSTS => {
                let had_iqe = self.fault.has(regs::FSTS_IQE);
                self.fault.write_fsts(val & mask);
                if had_iqe && !self.fault.has(regs::FSTS_IQE) {
                    // Hardware fetches again from IQH once IQE is cleared.
                    self.process_queue(mem);
                }
            }
            regs::FECTL => {
                let v = merge32(self.fault.fectl, val, mask);
                self.fault.write_fectl(v, &mut self.outbox);
            }
            regs::FEDATA => self.fault.fedata = merge32(self.fault.fedata, val, mask) & 0xffff,
            regs::FEADDR => self.fault.feaddr = merge32(self.fault.feaddr, val, mask) & !3,
            regs::FEUADDR => self.fault.feuaddr = merge32(self.fault.feuaddr, val, mask),
            regs::ICS => self.write_ics(val & mask),
            regs::IECTL => self.write_iectl(merge32(self.qi.iectl, val, mask)),
            regs::IEDATA => self.qi.iedata = merge32(self.qi.iedata, val, mask) & 0xffff,
            regs::IEADDR => self.qi.ieaddr = merge32(self.qi.ieaddr, val, mask) & !3,
            regs::IEUADDR => self.qi.ieuaddr = merge32(self.qi.ieuaddr, val, mask),
            _ => {}
        }
    }

    /// Writes the bytes of `val` selected by `mask` (byte-granular) to the aligned qword at `off`.
    pub(crate) fn write_qword(&mut self, mem: &dyn DmaMemory, off: u64, val: u64, mask: u64) {
        const HIGH_BYTE: u64 = 0xff << 56;
        match off {
            regs::RTADDR => self.rtaddr = merge(self.rtaddr, val, mask) & regs::RTADDR_MASK,
            regs::CCMD => {
                self.ccmd = merge(self.ccmd, val, mask) & regs::CCMD_WRITABLE;
                if mask & HIGH_BYTE != 0 && self.ccmd & regs::CCMD_ICC != 0 {
                    self.run_ccmd();
                }
            }
            regs::IQT => {
                self.qi.iqt = merge(self.qi.iqt, val, mask) & regs::IQ_OFFSET_MASK;
                if mask & 0xffff_ffff != 0 {
                    self.process_queue(mem);
                }
            }
            regs::IQA => {
                self.qi.iqa = merge(self.qi.iqa, val, mask)
                    & (regs::IQA_BASE_MASK | regs::IQA_DW | regs::IQA_QS_MASK)
            }
            regs::IVA => self.iva = merge(self.iva, val, mask) & regs::IVA_WRITABLE,
            regs::IRTA => self.write_irta(val, mask),
            regs::IOTLB => {
                self.iotlb_reg = merge(self.iotlb_reg, val, mask) & regs::IOTLB_WRITABLE;
                if mask & HIGH_BYTE != 0 && self.iotlb_reg & regs::IOTLB_IVT != 0 {
                    self.run_iotlb_reg();
                }
            }
            // CAP, ECAP, IQH, IQERCD are read-only.
            regs::CAP | regs::ECAP | regs::IQH | regs::IQERCD => {}
            _ => match frcd_slot(off, self.fault.nfr()) {
                Some((index, 1)) => self.fault.write_record_hi(index, val & mask),
                Some(_) => {}
                None => {
                    if mask & 0xffff_ffff != 0 {
                        self.write32(mem, off, val as u32, mask as u32);
                    }
                    if mask >> 32 != 0 {
                        self.write32(mem, off + 4, (val >> 32) as u32, (mask >> 32) as u32);
                    }
                }
            },
        }
    }

    /// GCMD (11.4.4): software writes the whole desired state each time; status follows at once.
    /// SFL/EAFL (no CAP.AFL) and WBF (CAP.RWBF=0) are ignored; IRE/SIRTP/CFI are interrupt remapping's
    /// (`ir.rs`, ignored without ECAP.IR).
    fn write_gcmd(&mut self, mem: &dyn DmaMemory, v: u32) {
        if v & regs::GCMD_SRTP != 0 {
            // Latch the root table; cached entries stay until software invalidates them (no ESRTPS).
            self.root = self.rtaddr;
            self.gsts |= regs::GSTS_RTPS;
        }
        if v & regs::GCMD_TE != 0 {
            self.gsts |= regs::GSTS_TES;
        } else {
            self.gsts &= !regs::GSTS_TES;
        }
        let qie = v & regs::GCMD_QIE != 0;
        let qies = self.gsts & regs::GSTS_QIES != 0;
        if qie && !qies {
            // Enabling QI starts fetching at offset 0 (the driver has set IQT to 0 beforehand).
            self.gsts |= regs::GSTS_QIES;
            self.qi.iqh = 0;
            self.process_queue(mem);
        } else if !qie && qies {
            self.gsts &= !regs::GSTS_QIES;
        }
        self.ir_command(v);
    }
}
