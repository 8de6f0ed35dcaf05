//! Event records (IHI0070 §7.3): 32 bytes; the fault records' common layout as Linux's EVTQ_* fields.

use super::regs::{evt, field};

/// One decoded event record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: u8,
    /// SubstreamID valid.
    pub ssv: bool,
    pub ssid: u32,
    pub sid: u32,
    pub stag: u16,
    pub stall: bool,
    /// Privileged (PnU = 1) / unprivileged.
    pub pnu: bool,
    /// Instruction (InD = 1) / data.
    pub ind: bool,
    /// Read (RnW = 1) / write.
    pub rnw: bool,
    /// The fault is a stage-2 fault.
    pub s2: bool,
    /// CLASS: 0 CD fetch, 1 translation table walk, 2 input address.
    pub class: u8,
    /// InputAddr (dword 2).
    pub input_addr: u64,
    /// IPA of stage-2 faults (dword 3 bits 51:3 — Linux masks 51:12).
    pub ipa: u64,
    pub raw: [u64; 4],
}

impl Event {
    pub fn decode(raw: [u64; 4]) -> Event {
        let d0 = raw[0];
        let d1 = raw[1];
        Event {
            id: field(d0, 7, 0) as u8,
            ssv: field(d0, 11, 11) != 0,
            ssid: field(d0, 31, 12) as u32,
            sid: field(d0, 63, 32) as u32,
            stag: field(d1, 15, 0) as u16,
            stall: field(d1, 31, 31) != 0,
            pnu: field(d1, 33, 33) != 0,
            ind: field(d1, 34, 34) != 0,
            rnw: field(d1, 35, 35) != 0,
            s2: field(d1, 39, 39) != 0,
            class: field(d1, 41, 40) as u8,
            input_addr: raw[2],
            ipa: raw[3] & 0x000f_ffff_ffff_fff8,
            raw,
        }
    }

    pub fn name(&self) -> &'static str {
        evt::name(self.id)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}({:#04x}) sid={:#x} ssv={} ssid={:#x} rnw={} s2={} class={} input={:#x} ipa={:#x}",
            self.name(),
            self.id,
            self.sid,
            u8::from(self.ssv),
            self.ssid,
            u8::from(self.rnw),
            u8::from(self.s2),
            self.class,
            self.input_addr,
            self.ipa
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_permission_fault() {
        let raw = [
            0x13 | 1 << 11 | 5 << 12 | 0x18 << 32,
            1 << 35 | 1 << 39 | 1 << 40,
            0x1234_5678,
            0x8000_1000,
        ];
        let e = Event::decode(raw);
        assert_eq!(e.id, 0x13);
        assert_eq!(e.name(), "F_PERMISSION");
        assert!(e.ssv && e.rnw && e.s2);
        assert_eq!((e.ssid, e.sid, e.class), (5, 0x18, 1));
        assert_eq!((e.input_addr, e.ipa), (0x1234_5678, 0x8000_1000));
        assert!(e.to_string().contains("F_PERMISSION(0x13) sid=0x18"));
    }
}
