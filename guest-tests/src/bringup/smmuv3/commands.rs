//! Command-queue entries (IHI0070 §4; field layout as Linux's arm_smmu_cmdq_build_cmd): 16 bytes, opcode in
//! bits 7:0 of dword 0.

use super::regs::{op, prep};

/// One 16-byte command.
pub type Cmd = [u64; 2];

/// CMD_CFGI_STE: invalidate the cached STE of `sid` (§4.3.2).
pub fn cfgi_ste(sid: u32) -> Cmd {
    [u64::from(op::CFGI_STE) | prep(u64::from(sid), 63, 32), 1]
}

/// CMD_CFGI_ALL: every cached STE and CD (encoded as CFGI_STE_RANGE with Range = 31, §4.3.4).
pub fn cfgi_all() -> Cmd {
    [u64::from(op::CFGI_ALL), 31]
}

/// CMD_CFGI_CD: the CD of (`sid`, `ssid`) (§4.3.5).
pub fn cfgi_cd(sid: u32, ssid: u32) -> Cmd {
    [
        u64::from(op::CFGI_CD) | prep(u64::from(ssid), 31, 12) | prep(u64::from(sid), 63, 32),
        1,
    ]
}

/// CMD_CFGI_CD_ALL: every CD of `sid` (§4.3.6).
pub fn cfgi_cd_all(sid: u32) -> Cmd {
    [u64::from(op::CFGI_CD_ALL) | prep(u64::from(sid), 63, 32), 0]
}

/// CMD_TLBI_NH_ASID (§4.4.2).
pub fn tlbi_nh_asid(vmid: u16, asid: u16) -> Cmd {
    [
        u64::from(op::TLBI_NH_ASID) | prep(u64::from(vmid), 47, 32) | prep(u64::from(asid), 63, 48),
        0,
    ]
}

/// CMD_TLBI_NH_VA for one address, not range-based (§4.4.3). `leaf` limits it to last-level entries.
pub fn tlbi_nh_va(vmid: u16, asid: u16, va: u64, leaf: bool) -> Cmd {
    [
        u64::from(op::TLBI_NH_VA) | prep(u64::from(vmid), 47, 32) | prep(u64::from(asid), 63, 48),
        (va & !0xfff) | u64::from(leaf),
    ]
}

/// CMD_TLBI_NH_VA with a range (IDR3.RIL, §4.4.1.1): NUM+1 pages of 2^(5*SCALE+1) ... here TG selects the
/// granule and the range covers `(num + 1) << (scale * 5 + 1)` granules from `va`.
pub fn tlbi_nh_va_range(vmid: u16, asid: u16, va: u64, tg: u64, scale: u8, num: u8) -> Cmd {
    [
        u64::from(op::TLBI_NH_VA)
            | prep(u64::from(num), 16, 12)
            | prep(u64::from(scale), 24, 20)
            | prep(u64::from(vmid), 47, 32)
            | prep(u64::from(asid), 63, 48),
        (va & !0xfff) | prep(tg, 11, 10),
    ]
}

/// CMD_TLBI_S2_IPA for one IPA (§4.4.6).
pub fn tlbi_s2_ipa(vmid: u16, ipa: u64, leaf: bool) -> Cmd {
    [
        u64::from(op::TLBI_S2_IPA) | prep(u64::from(vmid), 47, 32),
        (ipa & 0x000f_ffff_ffff_f000) | u64::from(leaf),
    ]
}

/// CMD_TLBI_S12_VMALL: every stage-1 and stage-2 entry of `vmid` (§4.4.5).
pub fn tlbi_s12_vmall(vmid: u16) -> Cmd {
    [
        u64::from(op::TLBI_S12_VMALL) | prep(u64::from(vmid), 47, 32),
        0,
    ]
}

/// CMD_TLBI_NSNH_ALL (§4.4.8).
pub fn tlbi_nsnh_all() -> Cmd {
    [u64::from(op::TLBI_NSNH_ALL), 0]
}

/// CMD_TLBI_EL2_ALL.
pub fn tlbi_el2_all() -> Cmd {
    [u64::from(op::TLBI_EL2_ALL), 0]
}

/// Completion signal of CMD_SYNC (§4.7.3): CS bits 13:12.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncSignal {
    None,
    /// SIG_IRQ: an MSI write of `data` to `addr` (Linux's MSI polling points `addr` at the command itself).
    Msi {
        addr: u64,
        data: u32,
    },
}

/// CMD_SYNC.
pub fn cmd_sync(sig: SyncSignal) -> Cmd {
    match sig {
        SyncSignal::None => [u64::from(op::CMD_SYNC), 0],
        SyncSignal::Msi { addr, data } => [
            u64::from(op::CMD_SYNC)
                | prep(1, 13, 12)
                // MSH inner shareable, MSIAttr inner+outer write-back, as Linux.
                | prep(3, 23, 22)
                | prep(0xf, 27, 24)
                | prep(u64::from(data), 63, 32),
            addr & 0x000f_ffff_ffff_fffc,
        ],
    }
}

/// A command with an opcode no SMMUv3 defines (0x7f is in no command table of §4), for the CERROR_ILL path.
pub fn illegal() -> Cmd {
    [0x7f, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_linux() {
        assert_eq!(cfgi_ste(0x18), [0x18_0000_0003, 1]);
        assert_eq!(cfgi_all(), [4, 31]);
        assert_eq!(cfgi_cd(0x18, 5), [0x18_0000_5005, 1]);
        assert_eq!(tlbi_nh_asid(2, 7), [0x0007_0002_0000_0011, 0]);
        assert_eq!(
            tlbi_nh_va(0, 1, 0x1234_5678, true),
            [0x0001_0000_0000_0012, 0x1234_5001]
        );
        assert_eq!(
            tlbi_s2_ipa(3, 0x8000_1fff, false),
            [0x3_0000_002a, 0x8000_1000]
        );
        assert_eq!(tlbi_s12_vmall(9)[0], 0x9_0000_0028);
        let s = cmd_sync(SyncSignal::Msi {
            addr: 0x1000_0013,
            data: 0xabcd,
        });
        assert_eq!(s[0] & 0xff, 0x46);
        assert_eq!((s[0] >> 12) & 3, 1, "CS = SIG_IRQ");
        assert_eq!(s[0] >> 32, 0xabcd);
        assert_eq!(s[1], 0x1000_0010);
        let r = tlbi_nh_va_range(0, 1, 0x40_0000, 0, 1, 3);
        assert_eq!(((r[0] >> 12) & 0x1f, (r[0] >> 20) & 0x1f), (3, 1));
    }
}
