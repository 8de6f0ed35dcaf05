//! COM1: vm-superio's 16550A on port 0x3f8, interrupting through IOAPIC pin 4, output to the VMM's stdout.
//!
//! The output writer also watches the console for Linux's panic banner so the VMM can say "guest kernel
//! panicked" rather than only "guest reset" when `panic=-1` reboots the machine.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vm_superio::{Serial, Trigger};

use crate::bus::BusDevice;

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

/// COM1 on the I/O bus; `T` raises its interrupt.
pub struct SerialPort<T: Trigger, W: Write + Send> {
    serial: Serial<T, vm_superio::serial::NoEvents, ConsoleOut<W>>,
}

impl<T: Trigger, W: Write + Send> SerialPort<T, W> {
    pub fn new(irq: T, out: ConsoleOut<W>) -> Self {
        Self {
            serial: Serial::new(irq, out),
        }
    }
}

impl<T: Trigger + Send, W: Write + Send> BusDevice for SerialPort<T, W> {
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
    use std::sync::atomic::AtomicUsize;

    /// Counts interrupts.
    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);

    impl Trigger for Count {
        type E = io::Error;
        fn trigger(&self) -> io::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn port(panicked: &Arc<AtomicBool>) -> (SerialPort<Count, Vec<u8>>, Count) {
        let irq = Count::default();
        (
            SerialPort::new(irq.clone(), ConsoleOut::new(Vec::new(), panicked.clone())),
            irq,
        )
    }

    #[test]
    fn transmits_bytes_and_detects_panic() {
        let panicked = Arc::new(AtomicBool::new(false));
        let (mut p, _) = port(&panicked);
        for &b in b"hello\n[ 1.0] Kernel panic - not syncing: VFS\n" {
            p.write(0, &[b]);
        }
        assert!(panicked.load(Ordering::SeqCst));
        assert!(p.serial.writer().out.starts_with(b"hello\n"));
    }

    #[test]
    fn transmit_interrupt_when_enabled() {
        let panicked = Arc::new(AtomicBool::new(false));
        let (mut p, irq) = port(&panicked);
        p.write(1, &[0x02]); // IER: THR empty interrupt
        p.write(0, b"x");
        assert!(irq.0.load(Ordering::SeqCst) >= 1);
    }

    #[test]
    fn odd_sizes_and_offsets_are_harmless() {
        let panicked = Arc::new(AtomicBool::new(false));
        let (mut p, _) = port(&panicked);
        let mut b = [0u8; 4];
        p.read(0, &mut b);
        assert_eq!(b, [0xff; 4]);
        p.write(9, &[1]);
        p.write(0, &[1, 2]);
        let mut lsr = [0u8];
        p.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0, "THR empty after reset");
        assert!(!panicked.load(Ordering::SeqCst));
    }
}
