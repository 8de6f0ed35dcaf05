//! Does this KVM see its guests' XSETBV? A probe, and what the vCPU's XSAVE features become when it does not.
//!
//! On hardware KVM always intercepts XSETBV: it records the guest's XCR0 and recomputes CPUID.(EAX=0xD,ECX=0).EBX,
//! the size of the XSAVE area for the features enabled in XCR0 (Intel SDM vol. 2A, CPUID leaf 0DH). Linux checks
//! that size against the one it computes from the per-feature offsets of the features it enabled
//! (`paranoid_xstate_size_valid`, "XSAVE consistency problem") and disables XSAVE when they differ, which Linux
//! 7.x does not survive (a NULL `fpstate` in `fpstate_reset`).
//!
//! A KVM that runs nested under QEMU TCG never sees its guest's XSETBV: QEMU's TCG helper for XSETBV
//! (`helper_xsetbv`) has no SVM intercept check, so the L2 instruction changes the emulated XCR0 behind the L1
//! KVM's back. KVM then keeps reporting the area size for the XCR0 it last set itself, and any kernel that enables
//! a feature beyond it (Debian's kernels enable PKRU) sees the mismatch. QEMU/KVM in the same test host shows the
//! same failure (see the README), so the fault is the host's; iovmm works around it here.
//!
//! [`probe`] runs a one-page real-mode guest that executes `XSETBV` with XCR0 = 3 and halts, then reads XCR0 back
//! with `KVM_GET_XCRS`: 3 means KVM intercepted the instruction; anything else means it did not. Where it did not,
//! [`restrict`] offers only the XSAVE features every x86-64 Linux enables when it has them (x87, SSE, AVX), and
//! [`boot_xcr0`] starts the vCPU with exactly those, so the size KVM reports is the size Linux computes and the
//! test host's own XCR0 is still switched on every exit (KVM's view of the guest's XCR0 differs from the host's).

use kvm_bindings::{kvm_cpuid_entry2, kvm_userspace_memory_region, kvm_xcrs, CpuId};
use kvm_ioctls::{Kvm, VcpuExit};
use thiserror::Error;

/// XCR0 bits: x87, SSE, AVX (the upper halves of the YMM registers).
pub const XFEATURE_FP: u64 = 1 << 0;
pub const XFEATURE_SSE: u64 = 1 << 1;
pub const XFEATURE_YMM: u64 = 1 << 2;
/// CPUID.1:ECX bit 28: AVX.
const CPUID_1_ECX_AVX: u32 = 1 << 28;
/// CPUID.(EAX=7,ECX=0):ECX bit 3: PKU (its XSAVE state is PKRU, XCR0 bit 9).
const CPUID_7_ECX_PKU: u32 = 1 << 3;
/// The legacy region (512 bytes) plus the XSAVE header (64 bytes): the area size for XCR0 = x87 | SSE.
const XSAVE_LEGACY_AND_HEADER: u32 = 576;

const LEAF_FEATURES: u32 = 0x1;
const LEAF_EXT_FEATURES: u32 = 0x7;
const LEAF_XSAVE: u32 = 0xd;

/// Errors running the probe (a KVM that cannot run a one-page guest cannot run Linux either).
#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("KVM {0} failed during the XSETBV probe: {1}")]
    Kvm(&'static str, kvm_ioctls::Error),
    #[error("cannot map the XSETBV probe's page: {0}")]
    Map(std::io::Error),
    #[error("the XSETBV probe guest stopped with {0} instead of HLT")]
    Exit(String),
}

/// The probe guest, at guest physical address 0x1000 in real mode:
/// `mov ecx, 0; mov eax, 3; xor edx, edx; xsetbv; hlt`.
const PROBE_CODE: [u8; 19] = [
    0x66, 0xb9, 0x00, 0x00, 0x00, 0x00, // mov ecx, 0      (XCR0)
    0x66, 0xb8, 0x03, 0x00, 0x00, 0x00, // mov eax, 3      (x87 | SSE)
    0x66, 0x31, 0xd2, // xor edx, edx
    0x0f, 0x01, 0xd1, // xsetbv
    0xf4, // hlt
];
const PROBE_XCR0: u64 = XFEATURE_FP | XFEATURE_SSE;
const PROBE_GPA: u64 = 0x1000;
const PAGE: usize = 0x1000;
/// Three pages for KVM_SET_TSS_ADDRESS, away from the probe's page.
const PROBE_TSS_ADDRESS: usize = 0xfffb_d000;
/// CR4.OSXSAVE: XSETBV raises #UD without it.
const CR4_OSXSAVE: u64 = 1 << 18;

/// An anonymous page mapped for the probe guest, unmapped on drop.
struct ProbePage(*mut libc::c_void);

impl ProbePage {
    fn new() -> Result<Self, ProbeError> {
        // SAFETY: an anonymous private mapping with no address hint; the result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ProbeError::Map(std::io::Error::last_os_error()));
        }
        // SAFETY: `p` is a fresh, writable mapping of PAGE bytes and PROBE_CODE is shorter than a page.
        unsafe {
            std::ptr::copy_nonoverlapping(PROBE_CODE.as_ptr(), p.cast::<u8>(), PROBE_CODE.len())
        };
        Ok(Self(p))
    }
}

impl Drop for ProbePage {
    fn drop(&mut self) {
        // SAFETY: `self.0` is the PAGE-byte mapping made in `new`; the VM that used it is already gone (it is
        // declared after the page in `probe`, so it drops first).
        unsafe { libc::munmap(self.0, PAGE) };
    }
}

/// Runs the probe guest: `Ok(true)` when KVM intercepted its XSETBV.
pub fn probe(kvm: &Kvm, supported: &CpuId) -> Result<bool, ProbeError> {
    let kvm_err = |what| move |e| ProbeError::Kvm(what, e);
    let page = ProbePage::new()?;
    let vm = kvm.create_vm().map_err(kvm_err("CREATE_VM"))?;
    // Intel VMX without unrestricted guest runs real mode through a TSS; harmless elsewhere.
    vm.set_tss_address(PROBE_TSS_ADDRESS)
        .map_err(kvm_err("SET_TSS_ADDR"))?;
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: PROBE_GPA,
        memory_size: PAGE as u64,
        userspace_addr: page.0 as u64,
    };
    // SAFETY: the page is a live PAGE-byte mapping that outlives `vm` (declared before it, so dropped after).
    unsafe { vm.set_user_memory_region(region) }.map_err(kvm_err("SET_USER_MEMORY_REGION"))?;
    let mut vcpu = vm.create_vcpu(0).map_err(kvm_err("CREATE_VCPU"))?;
    vcpu.set_cpuid2(supported).map_err(kvm_err("SET_CPUID2"))?;
    let mut sregs = vcpu.get_sregs().map_err(kvm_err("GET_SREGS"))?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    sregs.cr4 |= CR4_OSXSAVE;
    vcpu.set_sregs(&sregs).map_err(kvm_err("SET_SREGS"))?;
    let mut regs = vcpu.get_regs().map_err(kvm_err("GET_REGS"))?;
    regs.rip = PROBE_GPA;
    regs.rflags = 0x2;
    vcpu.set_regs(&regs).map_err(kvm_err("SET_REGS"))?;
    match vcpu.run().map_err(kvm_err("RUN"))? {
        VcpuExit::Hlt => {}
        other => return Err(ProbeError::Exit(format!("{other:?}"))),
    }
    let xcrs: kvm_xcrs = vcpu.get_xcrs().map_err(kvm_err("GET_XCRS"))?;
    let xcr0 = xcrs.xcrs[..xcrs.nr_xcrs.min(xcrs.xcrs.len() as u32) as usize]
        .iter()
        .find(|x| x.xcr == 0)
        .map_or(0, |x| x.value);
    Ok(xcr0 == PROBE_XCR0)
}

fn entry(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> Option<&kvm_cpuid_entry2> {
    entries
        .iter()
        .find(|e| e.function == function && e.index == index)
}

/// The XSAVE user features Linux enables on any x86-64 CPU that has them: x87 and SSE always, AVX when CPUID.1
/// says AVX and leaf 0xD lists its state.
pub fn linux_baseline_xfeatures(entries: &[kvm_cpuid_entry2]) -> u64 {
    let Some(xsave) = entry(entries, LEAF_XSAVE, 0) else {
        return XFEATURE_FP;
    };
    let offered = u64::from(xsave.eax) | (u64::from(xsave.edx) << 32);
    let avx = entry(entries, LEAF_FEATURES, 0).is_some_and(|e| e.ecx & CPUID_1_ECX_AVX != 0);
    let wanted = XFEATURE_FP | XFEATURE_SSE | if avx { XFEATURE_YMM } else { 0 };
    (offered & wanted) | XFEATURE_FP
}

/// Offers only [`linux_baseline_xfeatures`] in leaf 0xD (subleaf 0: supported XCR0 bits and the maximum area size;
/// the subleaves of the other user features are dropped) and hides PKU, whose state lives in XCR0 bit 9.
/// Supervisor features (subleaf 1, IA32_XSS) are KVM's business through intercepted MSR writes and stay as offered.
pub fn restrict(entries: &mut Vec<kvm_cpuid_entry2>) {
    let keep = linux_baseline_xfeatures(entries);
    // The largest end (offset + size, subleaf i: EAX size, EBX offset) of any kept extended feature.
    let max_size = (2..64u32)
        .filter(|i| keep & (1u64 << i) != 0)
        .filter_map(|i| entry(entries, LEAF_XSAVE, i))
        .map(|e| e.ebx.saturating_add(e.eax))
        .fold(XSAVE_LEGACY_AND_HEADER, u32::max);
    entries.retain(|e| {
        e.function != LEAF_XSAVE || e.index < 2 || keep & (1u64 << e.index.min(63)) != 0
    });
    for e in entries.iter_mut() {
        match (e.function, e.index) {
            (LEAF_XSAVE, 0) => {
                e.eax = (keep & 0xffff_ffff) as u32;
                e.edx = (keep >> 32) as u32;
                e.ebx = max_size;
                e.ecx = max_size;
            }
            (LEAF_EXT_FEATURES, 0) => e.ecx &= !CPUID_7_ECX_PKU,
            _ => {}
        }
    }
}

/// The XCR0 a vCPU starts with: the architectural reset value (x87 only) where KVM intercepts XSETBV, else the
/// features [`restrict`] left, which is what the guest kernel is about to write.
pub fn boot_xcr0(entries: &[kvm_cpuid_entry2], intercepted: bool) -> u64 {
    if intercepted {
        XFEATURE_FP
    } else {
        linux_baseline_xfeatures(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32, eax: u32, ebx: u32, ecx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax,
            ebx,
            ecx,
            ..Default::default()
        }
    }

    /// What KVM nested in QEMU TCG `-cpu max` offers: x87, SSE, AVX and PKRU (XCR0 0x207, 2696 bytes at most).
    fn tcg_max() -> Vec<kvm_cpuid_entry2> {
        vec![
            leaf(1, 0, 0, 0, CPUID_1_ECX_AVX),
            leaf(7, 0, 0, 0, CPUID_7_ECX_PKU | 1),
            leaf(0xd, 0, 0x207, 0x340, 0xa88),
            leaf(0xd, 1, 0x1, 0, 0),
            leaf(0xd, 2, 256, 576, 0),
            leaf(0xd, 9, 8, 2688, 0),
        ]
    }

    #[test]
    fn baseline_follows_cpuid() {
        assert_eq!(linux_baseline_xfeatures(&tcg_max()), 0x7);
        let mut no_avx = tcg_max();
        no_avx[0].ecx = 0;
        assert_eq!(linux_baseline_xfeatures(&no_avx), 0x3);
        assert_eq!(
            linux_baseline_xfeatures(&[leaf(1, 0, 0, 0, CPUID_1_ECX_AVX), leaf(0xd, 0, 3, 0, 0)]),
            0x3
        );
        assert_eq!(linux_baseline_xfeatures(&[leaf(1, 0, 0, 0, 0)]), 0x1);
    }

    #[test]
    fn restrict_hides_pkru_and_sizes_the_area_for_avx() {
        let mut v = tcg_max();
        restrict(&mut v);
        let x = *entry(&v, 0xd, 0).unwrap();
        assert_eq!((x.eax, x.edx), (0x7, 0));
        // 576 + 256 bytes of YMM upper halves: the size Linux computes for x87 | SSE | AVX.
        assert_eq!((x.ebx, x.ecx), (832, 832));
        assert!(entry(&v, 0xd, 9).is_none());
        assert!(entry(&v, 0xd, 1).is_some() && entry(&v, 0xd, 2).is_some());
        assert_eq!(entry(&v, 7, 0).unwrap().ecx, 1);
        assert_eq!(boot_xcr0(&v, false), 0x7);
        assert_eq!(boot_xcr0(&v, true), 0x1);
    }

    #[test]
    fn restrict_without_avx_keeps_the_legacy_area() {
        let mut v = tcg_max();
        v[0].ecx = 0;
        restrict(&mut v);
        let x = *entry(&v, 0xd, 0).unwrap();
        assert_eq!((x.eax, x.ebx, x.ecx), (0x3, 576, 576));
        assert!(entry(&v, 0xd, 2).is_none());
    }

    #[test]
    fn probe_code_is_xsetbv_then_hlt() {
        assert_eq!(&PROBE_CODE[15..18], &[0x0f, 0x01, 0xd1]);
        assert_eq!(PROBE_CODE[18], 0xf4);
        assert_eq!(u64::from(PROBE_CODE[8]), PROBE_XCR0);
    }
}
