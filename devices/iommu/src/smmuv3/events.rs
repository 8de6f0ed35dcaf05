//! Event records (IHI0070 §7.3): the architected event numbers and their 32-byte encoding.

use serde::Serialize;

pub const F_UUT: u8 = 0x01;
pub const C_BAD_STREAMID: u8 = 0x02;
pub const F_STE_FETCH: u8 = 0x03;
pub const C_BAD_STE: u8 = 0x04;
pub const F_BAD_ATS_TREQ: u8 = 0x05;
pub const F_STREAM_DISABLED: u8 = 0x06;
pub const F_TRANSL_FORBIDDEN: u8 = 0x07;
pub const C_BAD_SUBSTREAMID: u8 = 0x08;
pub const F_CD_FETCH: u8 = 0x09;
pub const C_BAD_CD: u8 = 0x0a;
pub const F_WALK_EABT: u8 = 0x0b;
pub const F_TRANSLATION: u8 = 0x10;
pub const F_ADDR_SIZE: u8 = 0x11;
pub const F_ACCESS: u8 = 0x12;
pub const F_PERMISSION: u8 = 0x13;
pub const F_TLB_CONFLICT: u8 = 0x20;
pub const F_CFG_CONFLICT: u8 = 0x21;

/// The architected name of event `id` ("UNKNOWN" for numbers this model does not know).
pub fn event_name(id: u8) -> &'static str {
    match id {
        F_UUT => "F_UUT",
        C_BAD_STREAMID => "C_BAD_STREAMID",
        F_STE_FETCH => "F_STE_FETCH",
        C_BAD_STE => "C_BAD_STE",
        F_BAD_ATS_TREQ => "F_BAD_ATS_TREQ",
        F_STREAM_DISABLED => "F_STREAM_DISABLED",
        F_TRANSL_FORBIDDEN => "F_TRANSL_FORBIDDEN",
        C_BAD_SUBSTREAMID => "C_BAD_SUBSTREAMID",
        F_CD_FETCH => "F_CD_FETCH",
        C_BAD_CD => "C_BAD_CD",
        F_WALK_EABT => "F_WALK_EABT",
        F_TRANSLATION => "F_TRANSLATION",
        F_ADDR_SIZE => "F_ADDR_SIZE",
        F_ACCESS => "F_ACCESS",
        F_PERMISSION => "F_PERMISSION",
        F_TLB_CONFLICT => "F_TLB_CONFLICT",
        F_CFG_CONFLICT => "F_CFG_CONFLICT",
        _ => "UNKNOWN",
    }
}

/// Whether `id` is an event number [`super::Smmuv3::inject_event`] accepts (one this model can raise).
pub fn injectable(id: u8) -> bool {
    matches!(
        id,
        C_BAD_STREAMID
            | F_STE_FETCH
            | C_BAD_STE
            | F_STREAM_DISABLED
            | C_BAD_SUBSTREAMID
            | F_CD_FETCH
            | C_BAD_CD
            | F_WALK_EABT
            | F_TRANSLATION
            | F_ADDR_SIZE
            | F_ACCESS
            | F_PERMISSION
    )
}

/// Fault class (IHI0070 §7.3.12 CLASS): what the faulting access was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum EventClass {
    /// Fetching a CD (stage 2 translation of a CD address).
    Cd = 0,
    /// A translation table walk (stage 2 translation of a stage 1 table address).
    Tt = 1,
    /// The input address itself.
    In = 2,
}

/// One event, with every field any record type carries; `encode` places those the type defines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: u8,
    pub name: &'static str,
    pub sid: u32,
    /// SubstreamID, when the transaction had one (SSV).
    pub ssid: Option<u32>,
    /// The transaction's input address (translation, address size, access, permission, walk abort).
    pub input_addr: u64,
    /// Read (RnW = 1) or write.
    pub read: bool,
    /// Privileged (PnU).
    pub privileged: bool,
    /// Instruction fetch (InD); always false here (requests are data).
    pub instruction: bool,
    /// The fault was at stage 2.
    pub s2: bool,
    pub class: EventClass,
    /// The IPA (stage 2 faults).
    pub ipa: Option<u64>,
    /// The physical address of the failed fetch (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT).
    pub fetch_addr: Option<u64>,
}

impl Event {
    /// An event of type `id` for `sid`/`ssid` with every other field clear.
    pub fn new(id: u8, sid: u32, ssid: Option<u32>) -> Self {
        Self {
            id,
            name: event_name(id),
            sid,
            ssid,
            input_addr: 0,
            read: false,
            privileged: false,
            instruction: false,
            s2: false,
            class: EventClass::In,
            ipa: None,
            fetch_addr: None,
        }
    }

    /// The 32-byte record, as four little-endian doublewords (IHI0070 §7.3; Linux EVTQ_* fields).
    ///
    /// - DW0: type [7:0], SSV [11], SubstreamID [31:12], StreamID [63:32] (all types).
    /// - DW1 (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION, F_WALK_EABT): STAG [15:0] and Stall
    ///   [31] zero (no stall model), PnU [33], InD [34], RnW [35], S2 [39], CLASS [41:40].
    /// - DW2: InputAddr (the same types).
    /// - DW3: IPA [51:12] for the translation-fault types when S2 is set; FetchAddr [51:3] for
    ///   F_STE_FETCH, F_CD_FETCH and F_WALK_EABT.
    pub fn encode(&self) -> [u64; 4] {
        let mut dw = [0u64; 4];
        dw[0] = u64::from(self.id) | u64::from(self.sid) << 32;
        if let Some(ssid) = self.ssid {
            dw[0] |= 1 << 11 | u64::from(ssid & 0xf_ffff) << 12;
        }
        let walk_type = matches!(
            self.id,
            F_TRANSLATION | F_ADDR_SIZE | F_ACCESS | F_PERMISSION | F_WALK_EABT
        );
        if walk_type {
            dw[1] = u64::from(self.privileged) << 33
                | u64::from(self.instruction) << 34
                | u64::from(self.read) << 35
                | u64::from(self.s2) << 39
                | (self.class as u64) << 40;
            dw[2] = self.input_addr;
        }
        match self.id {
            F_STE_FETCH | F_CD_FETCH | F_WALK_EABT => {
                dw[3] = self.fetch_addr.unwrap_or(0) & 0x000f_ffff_ffff_fff8;
            }
            F_TRANSLATION | F_ADDR_SIZE | F_ACCESS | F_PERMISSION if self.s2 => {
                dw[3] = self.ipa.unwrap_or(0) & 0x000f_ffff_ffff_f000;
            }
            _ => {}
        }
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_fault_record_layout() {
        let mut e = Event::new(F_TRANSLATION, 0x18, Some(5));
        e.input_addr = 0xdead_b000;
        e.read = true;
        e.s2 = true;
        e.class = EventClass::Tt;
        e.ipa = Some(0x1234_5678);
        let dw = e.encode();
        assert_eq!(dw[0], 0x10 | 1 << 11 | 5 << 12 | 0x18 << 32);
        assert_eq!(dw[1], 1 << 35 | 1 << 39 | 1 << 40);
        assert_eq!(dw[2], 0xdead_b000);
        assert_eq!(dw[3], 0x1234_5000);
    }

    #[test]
    fn fetch_records_and_names() {
        let mut e = Event::new(F_STE_FETCH, 7, None);
        e.fetch_addr = Some(0xffff_0000_1234_5679);
        let dw = e.encode();
        assert_eq!(dw[0], 3 | 7 << 32);
        assert_eq!(dw[1], 0);
        assert_eq!(dw[3], 0x000f_0000_1234_5678);
        assert_eq!(event_name(C_BAD_CD), "C_BAD_CD");
        assert_eq!(event_name(0x99), "UNKNOWN");
        assert!(injectable(F_PERMISSION) && !injectable(0x99));
    }
}
