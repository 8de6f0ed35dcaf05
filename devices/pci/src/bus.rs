//! A PCI segment: the host bridge at 00:00.0 plus endpoints on bus 0 (function 0 each), reached through
//! configuration mechanism #1 (ports 0xCF8..0xCFF), ECAM, and BAR-routed MMIO.

use crate::bar::{Bar, BarError, BarType};
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

const CONFIG_ADDRESS_ENABLE: u32 = 1 << 31;
/// Bits of CONFIG_ADDRESS that hold state: enable, bus, device, function, register (dword aligned).
const CONFIG_ADDRESS_MASK: u32 = 0x80ff_fffc;

/// Errors of segment construction and resource assignment.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SegmentError {
    #[error("device number {0} out of range (0..32)")]
    InvalidDeviceNumber(u8),
    #[error("device number {0} is already in use")]
    Occupied(u8),
    #[error("{bdf} BAR {bar}: no room for {size:#x} bytes in the {window} window")]
    WindowExhausted {
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
    devices: BTreeMap<u8, Box<dyn PciDevice>>,
    config_address: u32,
}

impl std::fmt::Debug for PciSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciSegment")
            .field("devices", &self.devices.keys().collect::<Vec<_>>())
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

impl PciSegment {
    /// A segment holding only the host bridge at 00:00.0.
    pub fn new() -> Self {
        let mut devices: BTreeMap<u8, Box<dyn PciDevice>> = BTreeMap::new();
        devices.insert(0, Box::new(HostBridge::new()));
        PciSegment {
            devices,
            config_address: 0,
        }
    }

    /// Places `device` at 00:`dev`.0.
    pub fn add_device(&mut self, dev: u8, device: Box<dyn PciDevice>) -> Result<(), SegmentError> {
        if dev >= DEVICES_PER_BUS {
            return Err(SegmentError::InvalidDeviceNumber(dev));
        }
        if self.devices.contains_key(&dev) {
            return Err(SegmentError::Occupied(dev));
        }
        self.devices.insert(dev, device);
        Ok(())
    }

    /// The function at 00:`dev`.0.
    pub fn device(&self, dev: u8) -> Option<&dyn PciDevice> {
        self.devices.get(&dev).map(|d| &**d)
    }

    /// The function at 00:`dev`.0, mutably.
    pub fn device_mut(&mut self, dev: u8) -> Option<&mut (dyn PciDevice + 'static)> {
        self.devices.get_mut(&dev).map(|d| &mut **d)
    }

    fn function(&mut self, bus: u32, dev: u32, func: u32) -> Option<&mut Box<dyn PciDevice>> {
        if bus != 0 || func != 0 {
            return None;
        }
        self.devices.get_mut(&u8::try_from(dev).ok()?)
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

    fn route(&mut self, gpa: u64) -> Option<(&mut Box<dyn PciDevice>, u8, u64)> {
        self.devices
            .values_mut()
            .find_map(|d| d.decode(gpa).map(|(bar, off)| (bar, off, d)))
            .map(|(bar, off, d)| (d, bar, off))
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
    /// and 32-bit BARs from `mmio32` (each `(base, size)`), largest first; then COMMAND.MEM is set on every
    /// function with BARs, as firmware leaves it (Linux claims the BARs that fit the host bridge windows and
    /// keeps the addresses). Bus mastering stays off until the guest's driver enables it.
    pub fn allocate_bars(
        &mut self,
        mmio32: (u64, u64),
        mmio64: (u64, u64),
    ) -> Result<(), SegmentError> {
        let mut all: Vec<(u8, Bar)> = self
            .devices
            .iter()
            .flat_map(|(&dev, d)| d.bars().into_iter().map(move |b| (dev, b)))
            .collect();
        // Largest first keeps natural alignment from wasting space; ties in (device, BAR) order.
        all.sort_by(|a, b| {
            b.1.size
                .cmp(&a.1.size)
                .then((a.0, a.1.index).cmp(&(b.0, b.1.index)))
        });
        let mut next32 = Window::new(mmio32);
        let mut next64 = Window::new(mmio64);
        for (dev, bar) in &all {
            let (window, name) = match bar.bar_type {
                BarType::Mem32 => (&mut next32, "32-bit"),
                BarType::Mem64 => (&mut next64, "64-bit"),
            };
            let address = window
                .take(bar.size)
                .ok_or_else(|| SegmentError::WindowExhausted {
                    bdf: bdf_string(*dev),
                    bar: bar.index,
                    size: bar.size,
                    window: name,
                })?;
            if let Some(d) = self.devices.get_mut(dev) {
                d.set_bar_address(bar.index, address)?;
            }
        }
        for d in self.devices.values_mut() {
            if !d.bars().is_empty() {
                d.config_mut()
                    .set_command_bits(crate::config::command::MEMORY_SPACE);
            }
        }
        Ok(())
    }

    /// What the guest should find on the segment, for the machine description.
    pub fn describe(&self) -> Vec<PciFunctionInfo> {
        self.devices
            .iter()
            .map(|(&dev, d)| {
                let c = d.config();
                PciFunctionInfo {
                    bdf: bdf_string(dev),
                    vendor_id: c.vendor_id(),
                    device_id: c.device_id(),
                    class: c.class_code(),
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
            })
            .collect()
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

    /// A naturally aligned block of `size` (a power of two), if it fits.
    fn take(&mut self, size: u64) -> Option<u64> {
        if !size.is_power_of_two() {
            return None;
        }
        let addr = self.next.checked_add(size - 1)? & !(size - 1);
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
