//! Test helpers: small IOMMU ports, a device factory, a VF platform that records what it hands out, and
//! register accessors (for the PF and VFs alike).

use super::*;
use crate::config::{command, reg};
use crate::msi::MsiSink;
use crate::msi::{msi_reg, RecordingSink};
use iommu::mem::TestMemory;
use iommu::{Access, DmaFault, DmaPort, DmaRequest, IdentityPort, Perms, Translation};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub const PAGE: u64 = 0x1000;
/// VT-d legacy fault reason: write to a page without W.
pub const REASON_NO_WRITE: u32 = 0x5;
/// VT-d legacy fault reason: read of a page without R.
pub const REASON_NO_READ: u32 = 0x6;

pub const RO: Perms = Perms {
    read: true,
    write: false,
    exec: false,
};

/// Maps 4 KiB IOVA pages to GPA pages with given permissions and refuses everything else (reason 5 for
/// writes, 6 for reads, as VT-d legacy mode does). Records every request it receives.
#[derive(Default)]
pub struct PagePort {
    pages: BTreeMap<u64, (u64, Perms)>,
    requests: Mutex<Vec<DmaRequest>>,
}

impl PagePort {
    /// Maps IOVA page `iova` (aligned) to `gpa` (aligned).
    pub fn map(mut self, iova: u64, gpa: u64, perms: Perms) -> Self {
        self.pages.insert(iova / PAGE, (gpa, perms));
        self
    }

    /// The requests received so far (and forgets them).
    pub fn take(&self) -> Vec<DmaRequest> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

impl DmaPort for PagePort {
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        self.requests.lock().unwrap().push(*req);
        match self.pages.get(&(req.iova / PAGE)) {
            Some(&(gpa, perms)) if perms.allows(req.access) => Ok(Translation {
                iova: req.iova & !(PAGE - 1),
                output: gpa,
                page_size: PAGE,
                perms,
            }),
            _ => {
                let reason = match req.access {
                    Access::Read => REASON_NO_READ,
                    Access::Write => REASON_NO_WRITE,
                };
                Err(DmaFault {
                    model: "test".into(),
                    reason,
                    description: "not mapped".into(),
                    iova: req.iova,
                    recorded: true,
                })
            }
        }
    }
}

/// Maps every IOVA onto `[0, window)` (2 MiB pages wrapping around), read/write: big transfers in small memory.
pub struct AliasPort {
    pub window: u64,
}

impl DmaPort for AliasPort {
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        const BIG: u64 = 2 << 20;
        let iova = req.iova & !(BIG - 1);
        Ok(Translation {
            iova,
            output: iova % self.window,
            page_size: BIG,
            perms: Perms::RW,
        })
    }
}

/// A device behind `port` with `mem_size` bytes of RAM, and what it talks to.
pub struct Rig {
    pub dev: TestDevice,
    pub sink: Arc<RecordingSink>,
    pub mem: Arc<TestMemory>,
}

pub fn rig(port: Arc<dyn DmaPort>, mem_size: usize) -> Rig {
    let sink = Arc::new(RecordingSink::default());
    let mem = Arc::new(TestMemory::new(mem_size));
    let dma = DmaAccessor::new(port, mem.clone(), 0x18);
    let dev = TestDevice::new(sink.clone(), dma).unwrap();
    Rig { dev, sink, mem }
}

/// A device behind the identity port with 64 KiB of RAM.
pub fn device() -> (TestDevice, Arc<RecordingSink>) {
    let r = rig(Arc::new(IdentityPort), 0x1_0000);
    (r.dev, r.sink)
}

pub fn cfg_write<D: PciDevice + ?Sized>(d: &mut D, off: usize, data: &[u8]) {
    d.config_write(off / 4, off % 4, data);
}

pub fn cfg_read32<D: PciDevice + ?Sized>(d: &mut D, off: usize) -> u32 {
    let mut b = [0u8; 4];
    d.config_read(off / 4, off % 4, &mut b);
    u32::from_le_bytes(b)
}

pub fn read32<D: PciDevice + ?Sized>(d: &mut D, off: u64) -> u32 {
    let mut b = [0u8; 4];
    d.bar_read(REGS_BAR, off, &mut b);
    u32::from_le_bytes(b)
}

pub fn write32<D: PciDevice + ?Sized>(d: &mut D, off: u64, v: u32) {
    d.bar_write(REGS_BAR, off, &v.to_le_bytes());
}

pub fn read64<D: PciDevice + ?Sized>(d: &mut D, off: u64) -> u64 {
    let mut b = [0u8; 8];
    d.bar_read(REGS_BAR, off, &mut b);
    u64::from_le_bytes(b)
}

pub fn write64<D: PciDevice + ?Sized>(d: &mut D, off: u64, v: u64) {
    d.bar_write(REGS_BAR, off, &v.to_le_bytes());
}

pub fn enable_bme<D: PciDevice + ?Sized>(d: &mut D) {
    cfg_write(
        d,
        reg::COMMAND,
        &(command::MEMORY_SPACE | command::BUS_MASTER).to_le_bytes(),
    );
}

/// Enables MSI at address 0xfee0_0000, data 0x30, with 2^mme vectors.
pub fn enable_msi<D: PciDevice + ?Sized>(d: &mut D, mme: u16) -> usize {
    let msi = d
        .config()
        .find_capability(crate::capability::id::MSI)
        .unwrap();
    cfg_write(d, msi + msi_reg::ADDRESS_LO, &0xfee0_0000u32.to_le_bytes());
    cfg_write(d, msi + msi_reg::DATA, &0x0030u16.to_le_bytes());
    cfg_write(d, msi + msi_reg::CONTROL, &(1 | mme << 4).to_le_bytes());
    msi
}

/// Programs SRC, DST, LEN and FLAGS, then writes CMD; returns STATUS.
pub fn run<D: PciDevice + ?Sized>(
    d: &mut D,
    cmd: u32,
    src: u64,
    dst: u64,
    len: u64,
    flags: u32,
) -> u32 {
    write64(d, REG_DMA_SRC, src);
    write64(d, REG_DMA_DST, dst);
    write64(d, REG_DMA_LEN, len);
    write32(d, REG_DMA_FLAGS, flags);
    write32(d, REG_DMA_CMD, cmd);
    read32(d, REG_DMA_STATUS)
}

/// Deterministic non-repeating-looking bytes.
pub fn noise(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

/// An accessor through the identity port onto 64 KiB of RAM, for tests that do no DMA.
pub fn identity_dma() -> DmaAccessor {
    DmaAccessor::new(
        Arc::new(IdentityPort),
        Arc::new(TestMemory::new(0x1_0000)),
        0x18,
    )
}

/// Offset of a function's PCI Express capability.
pub fn pcie_cap<D: PciDevice + ?Sized>(d: &D) -> usize {
    d.config()
        .find_capability(crate::capability::id::PCI_EXPRESS)
        .unwrap()
}

/// What Linux's `pcie_flr` writes: Device Control read back with Initiate Function Level Reset set.
pub fn initiate_flr<D: PciDevice + ?Sized>(d: &mut D) {
    let at = pcie_cap(&*d) + crate::pcie::pcie_reg::DEVCTL;
    let ctl = cfg_read32(d, at) as u16 | crate::pcie::devctl::INITIATE_FLR;
    cfg_write(d, at, &ctl.to_le_bytes());
}

/// The whole configuration space, read as the guest reads it.
pub fn config_dump<D: PciDevice + ?Sized>(d: &mut D) -> Vec<u8> {
    let mut v = vec![0u8; crate::config::CONFIG_SPACE_SIZE];
    for (i, chunk) in v.chunks_mut(4).enumerate() {
        d.config_read(i, 0, chunk);
    }
    v
}

/// A [`VfPlatform`] over one port and memory that records every requester id it built a path for, and gives
/// each VF its own recording sink.
pub struct RecordingVfs {
    pub port: Arc<dyn DmaPort>,
    pub mem: Arc<TestMemory>,
    pub sinks: Mutex<BTreeMap<u16, Arc<RecordingSink>>>,
}

impl RecordingVfs {
    pub fn new(port: Arc<dyn DmaPort>, mem: Arc<TestMemory>) -> Arc<Self> {
        Arc::new(RecordingVfs {
            port,
            mem,
            sinks: Mutex::new(BTreeMap::new()),
        })
    }

    /// The sink handed to the VF with requester id `rid`, if one was.
    pub fn sink(&self, rid: u16) -> Option<Arc<RecordingSink>> {
        self.sinks.lock().unwrap().get(&rid).cloned()
    }
}

impl VfPlatform for RecordingVfs {
    fn dma(&self, requester_id: u16) -> DmaAccessor {
        DmaAccessor::new(self.port.clone(), self.mem.clone(), u32::from(requester_id))
    }

    fn msi_sink(&self, requester_id: u16) -> Arc<dyn MsiSink> {
        self.sinks
            .lock()
            .unwrap()
            .entry(requester_id)
            .or_default()
            .clone()
    }
}

/// A PF behind `port` with `mem_size` bytes of RAM whose VFs get their paths from a [`RecordingVfs`].
pub struct SriovRig {
    pub dev: TestDevice,
    pub sink: Arc<RecordingSink>,
    pub mem: Arc<TestMemory>,
    pub vfs: Arc<RecordingVfs>,
}

pub fn sriov_rig(port: Arc<dyn DmaPort>, mem_size: usize) -> SriovRig {
    let sink = Arc::new(RecordingSink::default());
    let mem = Arc::new(TestMemory::new(mem_size));
    let vfs = RecordingVfs::new(port.clone(), mem.clone());
    let dma = DmaAccessor::new(port, mem.clone(), 0x18);
    let dev = TestDevice::with_vf_platform(sink.clone(), dma, vfs.clone()).unwrap();
    SriovRig {
        dev,
        sink,
        mem,
        vfs,
    }
}

/// What Linux's sriov_enable does, with the VF BARs placed first: NumVFs = `n`, then VF Enable | VF MSE.
pub fn enable_vfs(d: &mut TestDevice, n: u16, vf_bar0: u64, vf_bar2: u64) {
    use crate::sriov::sriov_reg;
    d.set_iov_bar_address(REGS_BAR, vf_bar0).unwrap();
    d.set_iov_bar_address(MSIX_BAR, vf_bar2).unwrap();
    let cap = SRIOV_CAP_OFFSET;
    cfg_write(d, cap + sriov_reg::NUM_VFS, &n.to_le_bytes());
    let ctrl = sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE;
    cfg_write(d, cap + sriov_reg::CTRL, &ctrl.to_le_bytes());
}
