//! A PCI segment: the host bridge at 00:00.0 plus functions on bus 0, reached through configuration mechanism
//! #1 (ports 0xCF8..0xCFF), ECAM, and BAR-routed MMIO.
//!
//! Functions are placed at build time by device and function number; a device number with more than one
//! function is a multi-function device (the segment sets Header Type bit 7 in each of its functions, PCI Local
//! Bus 3.0 §6.2.1, so that an OS scans functions 1..7). SR-IOV Virtual Functions are not placed: they belong
//! to their Physical Function, which creates and destroys them as the guest sets and clears VF Enable, and the
//! segment finds them on every access at the Routing IDs the PF's SR-IOV capability gives them (PCIe Base 6.0
//! §9.3.3.10-11): config requests to a VF's Routing ID and MMIO inside a VF's BAR slice reach that VF while it
//! exists, and nothing otherwise. The VF Routing IDs a PF could ever use may not collide with a placed
//! function or with another PF's.

use crate::bar::{Bar, BarError, BarType};
use crate::config::reg;
use crate::device::PciDevice;
use crate::root::HostBridge;
use firmware_tables::description::{BarInfo, BarKind, PciFunctionInfo};
use std::collections::BTreeMap;
use thiserror::Error;

/// First I/O port of configuration mechanism #1 (CONFIG_ADDRESS); CONFIG_DATA is at +4.
pub const CONFIG_ADDRESS_PORT: u16 = 0xcf8;
/// Number of I/O ports the segment decodes from [`CONFIG_ADDRESS_PORT`].
pub const CONFIG_PORT_COUNT: u16 = 8;
/// Size of an ECAM window covering buses 0..=255.
pub const ECAM_SIZE: u64 = 256 << 20;
/// Device numbers per bus.
pub const DEVICES_PER_BUS: u8 = 32;
/// Function numbers per device (without ARI).
pub const FUNCTIONS_PER_DEVICE: u8 = 8;

const CONFIG_ADDRESS_ENABLE: u32 = 1 << 31;
/// Bits of CONFIG_ADDRESS that hold state: enable, bus, device, function, register (dword aligned).
const CONFIG_ADDRESS_MASK: u32 = 0x80ff_fffc;
/// Header Type bit 7: Multi-Function Device.
const HEADER_MULTI_FUNCTION: u8 = 0x80;

/// Errors of segment construction and resource assignment.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SegmentError {
    #[error("device number {0} out of range (0..32)")]
    InvalidDeviceNumber(u8),
    #[error("function number {0} out of range (0..8)")]
    InvalidFunctionNumber(u8),
    #[error("device number {0} is already in use")]
    Occupied(u8),
    #[error("function {0} is already in use")]
    FunctionOccupied(String),
    #[error("Routing ID {rid} would be both {first} and {second}")]
    RoutingIdCollision {
        rid: String,
        first: String,
        second: String,
    },
    #[error("{bdf} BAR {bar}: no room for {size:#x} bytes in the {window} window")]
    WindowExhausted {
        bdf: String,
        bar: u8,
        size: u64,
        window: &'static str,
    },
    #[error("{bdf} VF BAR {bar}: no room for {size:#x} bytes in the {window} window")]
    VfWindowExhausted {
        bdf: String,
        bar: u8,
        size: u64,
        window: &'static str,
    },
    #[error(transparent)]
    Bar(#[from] BarError),
}

/// The PCI segment (segment 0, bus 0).
pub struct PciSegment {
    /// Placed functions by devfn (device << 3 | function) on bus 0.
    functions: BTreeMap<u8, Box<dyn PciDevice>>,
    config_address: u32,
}

impl std::fmt::Debug for PciSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciSegment")
            .field(
                "functions",
                &self
                    .functions
                    .keys()
                    .map(|&d| rid_string(u16::from(d)))
                    .collect::<Vec<_>>(),
            )
            .field(
                "config_address",
                &format_args!("{:#x}", self.config_address),
            )
            .finish()
    }
}

impl Default for PciSegment {
    fn default() -> Self {
        Self::new()
    }
}

/// `0000:00:DD.0` for device number `dev`.
pub fn bdf_string(dev: u8) -> String {
    format!("0000:00:{dev:02x}.0")
}

/// `0000:BB:DD.F` for Routing ID `rid` (bus << 8 | device << 3 | function).
pub fn rid_string(rid: u16) -> String {
    format!(
        "0000:{:02x}:{:02x}.{}",
        rid >> 8,
        (rid >> 3) & 0x1f,
        rid & 7
    )
}

/// Routing IDs of every VF the function at `devfn` could ever have.
fn potential_vfs(devfn: u8, d: &dyn PciDevice) -> Vec<u16> {
    d.vf_routing()
        .map(|r| r.all_routing_ids(u16::from(devfn)))
        .unwrap_or_default()
}

fn function_info(bdf: String, d: &dyn PciDevice) -> PciFunctionInfo {
    let (vendor_id, device_id) = d.os_ids();
    PciFunctionInfo {
        bdf,
        vendor_id,
        device_id,
        class: d.config().class_code(),
        bars: d
            .bars()
            .iter()
            .map(|b| BarInfo {
                index: b.index,
                kind: match b.bar_type {
                    BarType::Mem32 => BarKind::Mem32,
                    BarType::Mem64 => BarKind::Mem64,
                },
                prefetchable: b.prefetchable,
                start: b.address,
                end: b.address.wrapping_add(b.size.wrapping_sub(1)),
            })
            .collect(),
        msi: d.has_msi(),
        msix_vectors: d.msix_vectors(),
    }
}

impl PciSegment {
    /// A segment holding only the host bridge at 00:00.0.
    pub fn new() -> Self {
        let mut functions: BTreeMap<u8, Box<dyn PciDevice>> = BTreeMap::new();
        functions.insert(0, Box::new(HostBridge::new()));
        PciSegment {
            functions,
            config_address: 0,
        }
    }

    /// Places `device` at 00:`dev`.0.
    pub fn add_device(&mut self, dev: u8, device: Box<dyn PciDevice>) -> Result<(), SegmentError> {
        self.add_function(dev, 0, device)
    }

    /// Places `device` at 00:`dev`.`func`. Adding a second function to a device number makes it a
    /// multi-function device: Header Type bit 7 is set in each of its functions.
    pub fn add_function(
        &mut self,
        dev: u8,
        func: u8,
        mut device: Box<dyn PciDevice>,
    ) -> Result<(), SegmentError> {
        if dev >= DEVICES_PER_BUS {
            return Err(SegmentError::InvalidDeviceNumber(dev));
        }
        if func >= FUNCTIONS_PER_DEVICE {
            return Err(SegmentError::InvalidFunctionNumber(func));
        }
        let devfn = dev << 3 | func;
        if self.functions.contains_key(&devfn) {
            return Err(if func == 0 {
                SegmentError::Occupied(dev)
            } else {
                SegmentError::FunctionOccupied(rid_string(u16::from(devfn)))
            });
        }
        self.check_vf_collisions(devfn, &*device)?;
        let siblings: Vec<u8> = self
            .functions
            .keys()
            .copied()
            .filter(|&d| d >> 3 == dev)
            .collect();
        if !siblings.is_empty() {
            let mark = |c: &mut crate::config::ConfigSpace| {
                let h = c.read_u8(reg::HEADER_TYPE);
                c.set_u8(reg::HEADER_TYPE, h | HEADER_MULTI_FUNCTION);
            };
            mark(device.config_mut());
            for d in siblings {
                if let Some(f) = self.functions.get_mut(&d) {
                    mark(f.config_mut());
                }
            }
        }
        self.functions.insert(devfn, device);
        Ok(())
    }

    /// Fails if the new function at `devfn`, or a VF it could create, lands on a Routing ID that a placed
    /// function or a VF another PF could create already claims.
    fn check_vf_collisions(&self, devfn: u8, new: &dyn PciDevice) -> Result<(), SegmentError> {
        let mut taken: BTreeMap<u16, String> = BTreeMap::new();
        let mut claim = |rid: u16, who: String| match taken.get(&rid) {
            Some(first) => Err(SegmentError::RoutingIdCollision {
                rid: rid_string(rid),
                first: first.clone(),
                second: who,
            }),
            None => {
                taken.insert(rid, who);
                Ok(())
            }
        };
        let placed = self.functions.iter().map(|(&d, f)| (d, &**f));
        for (d, f) in placed.chain(std::iter::once((devfn, new))) {
            let name = rid_string(u16::from(d));
            claim(u16::from(d), name.clone())?;
            for (i, rid) in potential_vfs(d, f).into_iter().enumerate() {
                claim(rid, format!("VF {i} of {name}"))?;
            }
        }
        Ok(())
    }

    /// The function at 00:`dev`.0.
    pub fn device(&self, dev: u8) -> Option<&dyn PciDevice> {
        self.function_at(dev, 0)
    }

    /// The function at 00:`dev`.0, mutably.
    pub fn device_mut(&mut self, dev: u8) -> Option<&mut (dyn PciDevice + 'static)> {
        self.function_at_mut(dev, 0)
    }

    /// The placed function at 00:`dev`.`func` (VFs are reached through their PF).
    pub fn function_at(&self, dev: u8, func: u8) -> Option<&dyn PciDevice> {
        if dev >= DEVICES_PER_BUS || func >= FUNCTIONS_PER_DEVICE {
            return None;
        }
        self.functions.get(&(dev << 3 | func)).map(|d| &**d)
    }

    /// The placed function at 00:`dev`.`func`, mutably.
    pub fn function_at_mut(&mut self, dev: u8, func: u8) -> Option<&mut (dyn PciDevice + 'static)> {
        if dev >= DEVICES_PER_BUS || func >= FUNCTIONS_PER_DEVICE {
            return None;
        }
        self.functions.get_mut(&(dev << 3 | func)).map(|d| &mut **d)
    }

    /// The function answering Routing ID `rid` now: a placed function on bus 0, or a VF that exists.
    pub fn function_by_rid(&mut self, rid: u16) -> Option<&mut dyn PciDevice> {
        if let Ok(devfn) = u8::try_from(rid) {
            if self.functions.contains_key(&devfn) {
                return self
                    .functions
                    .get_mut(&devfn)
                    .map(|d| &mut **d as &mut dyn PciDevice);
            }
        }
        for (&devfn, f) in self.functions.iter_mut() {
            let Some(r) = f.vf_routing() else { continue };
            if let Some(i) = r.index_of(u16::from(devfn), rid, f.num_vfs()) {
                return f.vf_mut(i);
            }
        }
        None
    }

    fn function(&mut self, bus: u32, dev: u32, func: u32) -> Option<&mut dyn PciDevice> {
        let rid = u16::try_from(bus << 8 | dev << 3 | func).ok()?;
        self.function_by_rid(rid)
    }

    /// Config read of one chunk that stays inside a dword.
    fn chunk_read(&mut self, bus: u32, dev: u32, func: u32, reg: usize, data: &mut [u8]) {
        match self.function(bus, dev, func) {
            Some(d) => d.config_read(reg / 4, reg % 4, data),
            None => data.fill(0xff),
        }
    }

    fn chunk_write(&mut self, bus: u32, dev: u32, func: u32, reg: usize, data: &[u8]) {
        if let Some(d) = self.function(bus, dev, func) {
            d.config_write(reg / 4, reg % 4, data);
        }
    }

    /// Read from port `0xCF8 + offset`. Bytes of CONFIG_ADDRESS read back at any width; CONFIG_DATA bytes read
    /// the addressed function's config space (all ones when disabled or absent); anything else reads all ones.
    pub fn pio_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        let addr = self.config_address.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            if let Some(p) = offset.checked_add(i as u64).filter(|&p| p < 4) {
                *b = addr[p as usize];
            }
        }
        if let Some((start, bytes, reg)) = self.data_port_span(offset, data.len()) {
            let (bus, dev, func) = split_address(self.config_address);
            self.chunk_read(bus, dev, func, reg, &mut data[start..start + bytes]);
        }
    }

    /// Write to port `0xCF8 + offset`. CONFIG_ADDRESS takes only aligned 4-byte writes (byte writes to
    /// 0xCF8..0xCFB, such as Linux's probe `outb(0x01, 0xCFB)`, are ignored).
    pub fn pio_write(&mut self, offset: u64, data: &[u8]) {
        if offset == 0 {
            if let Ok(b) = <[u8; 4]>::try_from(data) {
                self.config_address = u32::from_le_bytes(b) & CONFIG_ADDRESS_MASK;
            }
            return;
        }
        if let Some((start, bytes, reg)) = self.data_port_span(offset, data.len()) {
            let (bus, dev, func) = split_address(self.config_address);
            self.chunk_write(bus, dev, func, reg, &data[start..start + bytes]);
        }
    }

    /// For an access at port offset `offset` of `len` bytes: the part that hits CONFIG_DATA (0xCFC..0xCFF) as
    /// (index in the access, byte count, config register offset), if CONFIG_ADDRESS is enabled.
    fn data_port_span(&self, offset: u64, len: usize) -> Option<(usize, usize, usize)> {
        if self.config_address & CONFIG_ADDRESS_ENABLE == 0 {
            return None;
        }
        let end = offset.checked_add(len as u64)?.min(8);
        let first = offset.max(4);
        if first >= end {
            return None;
        }
        let start = usize::try_from(first - offset).ok()?;
        let bytes = usize::try_from(end - first).ok()?;
        let reg = (self.config_address & 0xfc) as usize + (first - 4) as usize;
        Some((start, bytes, reg))
    }

    /// Read at `offset` inside the ECAM window (bus << 20 | device << 15 | function << 12 | register).
    pub fn ecam_read(&mut self, offset: u64, data: &mut [u8]) {
        let mut pos = 0;
        while pos < data.len() {
            let Some(o) = offset.checked_add(pos as u64) else {
                data[pos..].fill(0xff);
                return;
            };
            let n = (4 - (o % 4) as usize).min(data.len() - pos);
            let chunk = &mut data[pos..pos + n];
            match split_ecam(o) {
                Some((bus, dev, func, reg)) => self.chunk_read(bus, dev, func, reg, chunk),
                None => chunk.fill(0xff),
            }
            pos += n;
        }
    }

    /// Write at `offset` inside the ECAM window.
    pub fn ecam_write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = 0;
        while pos < data.len() {
            let Some(o) = offset.checked_add(pos as u64) else {
                return;
            };
            let n = (4 - (o % 4) as usize).min(data.len() - pos);
            if let Some((bus, dev, func, reg)) = split_ecam(o) {
                self.chunk_write(bus, dev, func, reg, &data[pos..pos + n]);
            }
            pos += n;
        }
    }

    /// The function (placed or VF) and BAR decoding `gpa`, and the offset in it.
    fn route(&mut self, gpa: u64) -> Option<(&mut dyn PciDevice, u8, u64)> {
        for f in self.functions.values_mut() {
            if let Some((bar, off)) = f.decode(gpa) {
                return Some((&mut **f, bar, off));
            }
            let hit = (0..f.num_vfs()).find_map(|i| {
                f.vf(i)
                    .and_then(|v| v.decode(gpa))
                    .map(|(bar, off)| (i, bar, off))
            });
            if let Some((i, bar, off)) = hit {
                return f.vf_mut(i).map(|v| (v, bar, off));
            }
        }
        None
    }

    /// MMIO read at guest physical address `gpa`: forwarded to the function and BAR decoding it (COMMAND.MEM
    /// set, BAR assigned). Returns false (data untouched) when no BAR decodes `gpa`.
    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) -> bool {
        match self.route(gpa) {
            Some((d, bar, off)) => {
                d.bar_read(bar, off, data);
                true
            }
            None => false,
        }
    }

    /// MMIO write at `gpa`; returns false when no BAR decodes it.
    pub fn mmio_write(&mut self, gpa: u64, data: &[u8]) -> bool {
        match self.route(gpa) {
            Some((d, bar, off)) => {
                d.bar_write(bar, off, data);
                true
            }
            None => false,
        }
    }

    /// Firmware-style BAR assignment: every BAR gets a naturally aligned address, 64-bit BARs from `mmio64`
    /// and 32-bit BARs from `mmio32` (each `(base, size)`), largest first; then the SR-IOV VF BAR apertures
    /// (per-VF size × TotalVFs, aligned to that rounded up to a power of two) the same way, after every BAR;
    /// then COMMAND.MEM is set on every function with BARs, as firmware leaves it (Linux claims the resources
    /// that fit the host bridge windows and keeps the addresses, IOV ones included). Bus mastering and VF MSE
    /// stay off until the guest's drivers enable them.
    pub fn allocate_bars(
        &mut self,
        mmio32: (u64, u64),
        mmio64: (u64, u64),
    ) -> Result<(), SegmentError> {
        let by_size = |list: &mut Vec<(u8, Bar)>| {
            // Largest first keeps natural alignment from wasting space; ties in (function, BAR) order.
            list.sort_by(|a, b| {
                b.1.size
                    .cmp(&a.1.size)
                    .then((a.0, a.1.index).cmp(&(b.0, b.1.index)))
            });
        };
        let mut bars: Vec<(u8, Bar)> = self
            .functions
            .iter()
            .flat_map(|(&devfn, d)| d.bars().into_iter().map(move |b| (devfn, b)))
            .collect();
        let mut iov: Vec<(u8, Bar)> = self
            .functions
            .iter()
            .flat_map(|(&devfn, d)| d.iov_bars().into_iter().map(move |b| (devfn, b)))
            .collect();
        by_size(&mut bars);
        by_size(&mut iov);
        let mut next32 = Window::new(mmio32);
        let mut next64 = Window::new(mmio64);
        for (is_iov, list) in [(false, &bars), (true, &iov)] {
            for (devfn, bar) in list {
                let (window, name) = match bar.bar_type {
                    BarType::Mem32 => (&mut next32, "32-bit"),
                    BarType::Mem64 => (&mut next64, "64-bit"),
                };
                let address = window.take(bar.size).ok_or_else(|| {
                    let bdf = rid_string(u16::from(*devfn));
                    let (bar, size, window) = (bar.index, bar.size, name);
                    if is_iov {
                        SegmentError::VfWindowExhausted {
                            bdf,
                            bar,
                            size,
                            window,
                        }
                    } else {
                        SegmentError::WindowExhausted {
                            bdf,
                            bar,
                            size,
                            window,
                        }
                    }
                })?;
                if let Some(d) = self.functions.get_mut(devfn) {
                    if is_iov {
                        d.set_iov_bar_address(bar.index, address)?;
                    } else {
                        d.set_bar_address(bar.index, address)?;
                    }
                }
            }
        }
        for d in self.functions.values_mut() {
            if !d.bars().is_empty() {
                d.config_mut()
                    .set_command_bits(crate::config::command::MEMORY_SPACE);
            }
        }
        Ok(())
    }

    /// What the guest should find on the segment, for the machine description: the placed functions and the
    /// VFs that exist now (none at boot: VF Enable resets to 0), in Routing ID order. A VF is listed as the OS
    /// sees it ([`PciDevice::os_ids`]) with its BAR slices.
    pub fn describe(&self) -> Vec<PciFunctionInfo> {
        let mut out: Vec<(u16, PciFunctionInfo)> = Vec::new();
        for (&devfn, d) in &self.functions {
            let rid = u16::from(devfn);
            out.push((rid, function_info(rid_string(rid), &**d)));
            let Some(r) = d.vf_routing() else { continue };
            for i in 0..d.num_vfs() {
                if let (Some(vf_rid), Some(v)) = (r.routing_id(rid, i), d.vf(i)) {
                    out.push((vf_rid, function_info(rid_string(vf_rid), v)));
                }
            }
        }
        out.sort_by_key(|(rid, _)| *rid);
        out.into_iter().map(|(_, f)| f).collect()
    }
}

/// A bump allocator over one MMIO window.
struct Window {
    next: u64,
    end: u64,
}

impl Window {
    fn new((base, size): (u64, u64)) -> Self {
        Window {
            next: base,
            end: base.saturating_add(size),
        }
    }

    /// A block of `size` bytes aligned to `size` rounded up to a power of two, if it fits.
    fn take(&mut self, size: u64) -> Option<u64> {
        if size == 0 {
            return None;
        }
        let align = size.checked_next_power_of_two()?;
        let addr = self.next.checked_add(align - 1)? & !(align - 1);
        let end = addr.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(addr)
    }
}

/// (bus, device, function) of a CONFIG_ADDRESS value.
fn split_address(addr: u32) -> (u32, u32, u32) {
    ((addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 7)
}

/// (bus, device, function, register) of an ECAM offset, if inside the window.
fn split_ecam(offset: u64) -> Option<(u32, u32, u32, usize)> {
    if offset >= ECAM_SIZE {
        return None;
    }
    let o = offset as u32;
    Some((
        (o >> 20) & 0xff,
        (o >> 15) & 0x1f,
        (o >> 12) & 7,
        (o & 0xfff) as usize,
    ))
}

#[cfg(test)]
mod tests;
