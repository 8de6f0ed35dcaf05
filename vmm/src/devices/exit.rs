//! The iovmm exit device at I/O port [`crate::layout::EXIT_DEVICE_PORT`] (0xf4).
//!
//! A write of 1, 2 or 4 bytes ends the VM; the VMM process exits with the low 8 bits of the value.
//! Reads return 0xff (no state). The port is QEMU's `isa-debug-exit` default in many setups, so the same
//! guest binary can end a QEMU run too (QEMU exits with `(value << 1) | 1` there).

use crate::bus::BusDevice;

use super::{ExitReason, ExitSender};

/// The exit device.
pub struct ExitDevice {
    events: ExitSender,
}

impl ExitDevice {
    pub fn new(events: ExitSender) -> Self {
        Self { events }
    }
}

impl BusDevice for ExitDevice {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset != 0 || data.is_empty() {
            return;
        }
        // Receiver gone means the VM is already stopping: nothing to do.
        let _ = self.events.send(ExitReason::GuestStatus(data[0]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_reports_low_byte() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut d = ExitDevice::new(tx);
        d.write(0, &0x0000_0103u32.to_le_bytes());
        assert_eq!(rx.try_recv().unwrap(), ExitReason::GuestStatus(3));
        d.write(1, &[5]);
        assert!(
            rx.try_recv().is_err(),
            "writes at other offsets are ignored"
        );
        let mut b = [0u8; 2];
        d.read(0, &mut b);
        assert_eq!(b, [0xff, 0xff]);
    }
}
