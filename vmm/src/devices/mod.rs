//! Legacy platform devices: COM1, the exit device and the i8042 reset line.

pub mod exit;
pub mod i8042;
pub mod ioapic;
pub mod serial;

/// Why the VM stopped. Sent by devices and vCPU threads to the main thread; the first one wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote its status to the exit device.
    GuestStatus(u8),
    /// The guest reset the machine (i8042 pulse, triple fault or a KVM reset event).
    Reset { what: &'static str },
    /// The guest asked KVM to power off (PSCI/ACPI style system event).
    PowerOff,
    /// A vCPU hit an error the VMM cannot continue from.
    Error(String),
}

/// Where exit reasons go.
pub type ExitSender = std::sync::mpsc::Sender<ExitReason>;
