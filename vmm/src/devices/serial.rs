//! COM1: vm-superio's 16550A on port 0x3f8, interrupting through an irqfd on GSI 4, output to the VMM's stdout.
//!
//! The output writer also watches the console for Linux's panic banner so the VMM can say "guest kernel
//! panicked" rather than only "guest reset" when `panic=-1` reboots the machine.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::bus::BusDevice;

/// Raises the serial IRQ by writing the irqfd.
pub struct IrqFdTrigger(pub EventFd);

impl Trigger for IrqFdTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

const PANIC_BANNER: &[u8] = b"Kernel panic - not syncing";

/// Console output: passes bytes through and notes a kernel panic banner.
pub struct ConsoleOut<W: Write> {
    out: W,
    line: Vec<u8>,
    panicked: Arc<AtomicBool>,
}

impl<W: Write> ConsoleOut<W> {
    pub fn new(out: W, panicked: Arc<AtomicBool>) -> Self {
        Self {
            out,
            line: Vec::with_capacity(256),
            panicked,
        }
    }

    fn scan(&mut self, buf: &[u8]) {
        for &b in buf {
            if b == b'\n' {
                if self
                    .line
                    .windows(PANIC_BANNER.len())
                    .any(|w| w == PANIC_BANNER)
                {
                    self.panicked.store(true, Ordering::SeqCst);
                }
                self.line.clear();
            } else if self.line.len() < 4096 {
                self.line.push(b);
            }
        }
    }
}

impl<W: Write> Write for ConsoleOut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.scan(buf);
        self.out.write_all(buf)?;
        if buf.contains(&b'\n') {
            self.out.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// COM1 on the I/O bus.
pub struct SerialPort<W: Write + Send> {
    serial: Serial<IrqFdTrigger, vm_superio::serial::NoEvents, ConsoleOut<W>>,
}

impl<W: Write + Send> SerialPort<W> {
    pub fn new(irq: EventFd, out: ConsoleOut<W>) -> Self {
        Self {
            serial: Serial::new(IrqFdTrigger(irq), out),
        }
    }
}

impl<W: Write + Send> BusDevice for SerialPort<W> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match (u8::try_from(offset), data.len()) {
            (Ok(off), 1) if off < 8 => data[0] = self.serial.read(off),
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(off), [value]) = (u8::try_from(offset), data) {
            if off < 8 {
                if let Err(e) = self.serial.write(off, *value) {
                    log::debug!("serial write failed: {e:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmits_bytes_and_detects_panic() {
        let panicked = Arc::new(AtomicBool::new(false));
        let mut port = SerialPort::new(
            EventFd::new(0).unwrap(),
            ConsoleOut::new(Vec::new(), panicked.clone()),
        );
        for &b in b"hello\n[ 1.0] Kernel panic - not syncing: VFS\n" {
            port.write(0, &[b]);
        }
        assert!(panicked.load(Ordering::SeqCst));
        let out = &port.serial.writer().out;
        assert!(out.starts_with(b"hello\n"));
    }

    #[test]
    fn odd_sizes_and_offsets_are_harmless() {
        let panicked = Arc::new(AtomicBool::new(false));
        let mut port = SerialPort::new(
            EventFd::new(0).unwrap(),
            ConsoleOut::new(Vec::new(), panicked.clone()),
        );
        let mut b = [0u8; 4];
        port.read(0, &mut b);
        assert_eq!(b, [0xff; 4]);
        port.write(9, &[1]);
        port.write(0, &[1, 2]);
        let mut lsr = [0u8];
        port.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0, "THR empty after reset");
        assert!(!panicked.load(Ordering::SeqCst));
    }
}
