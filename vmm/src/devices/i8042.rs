//! Just enough of the i8042 keyboard controller for Linux's `reboot=k`: a 0xFE command on port 0x64 pulses
//! the reset line. Everything else reads as "no controller" (0xff) except the status register, which reads 0
//! (input buffer empty) so the kernel's reset loop does not spin waiting for it.

use crate::bus::BusDevice;
use crate::layout::I8042_RESET_COMMAND;

use super::{ExitReason, ExitSender};

/// The i8042 command/status port.
pub struct I8042Reset {
    events: ExitSender,
}

impl I8042Reset {
    pub fn new(events: ExitSender) -> Self {
        Self { events }
    }
}

impl BusDevice for I8042Reset {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == 0 && data.first() == Some(&I8042_RESET_COMMAND) {
            let _ = self.events.send(ExitReason::Reset {
                what: "i8042 reset",
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_resets() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut d = I8042Reset::new(tx);
        d.write(0, &[0xd1]);
        assert!(rx.try_recv().is_err());
        d.write(0, &[0xfe]);
        assert_eq!(
            rx.try_recv().unwrap(),
            ExitReason::Reset {
                what: "i8042 reset"
            }
        );
        let mut b = [0xaau8];
        d.read(0, &mut b);
        assert_eq!(b[0], 0);
    }
}
