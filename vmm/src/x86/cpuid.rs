//! Per-vCPU CPUID: KVM's supported set with the topology made consistent with the MADT
//! (APIC ids 0..n-1, one package, one thread per core).

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE_PARAMS: u32 = 0x4;
const LEAF_EXT_TOPOLOGY: u32 = 0xb;
const LEAF_V2_EXT_TOPOLOGY: u32 = 0x1f;
const LEAF_EXT_FEATURES: u32 = 0x8000_0001;
const LEAF_ADDR_SIZES: u32 = 0x8000_0008;
const LEAF_AMD_EXT_APIC_ID: u32 = 0x8000_001e;

/// CPUID.1:ECX bit 31: running under a hypervisor.
const ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID.1:EDX bit 28: HTT (the package-size field in EBX is valid).
const EDX_HTT: u32 = 1 << 28;
/// CPUID.8000_0001:ECX bit 22: TOPOEXT (AMD leaf 0x8000_001e); cleared so Linux uses leaf 0xb.
const ECX_TOPOEXT: u32 = 1 << 22;
/// CPUID.8000_0001:ECX bit 1: CMP legacy (AMD); cleared with TOPOEXT.
const ECX_CMP_LEGACY: u32 = 1 << 1;

/// Topology level types in leaf 0xb/0x1f ECX[15:8].
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;

/// Number of APIC-id bits needed for `cpus` cores.
fn core_shift(cpus: u8) -> u32 {
    u32::from(cpus.max(1)).next_power_of_two().trailing_zeros()
}

fn topology_entry(function: u32, index: u32, apic_id: u32, cpus: u8) -> kvm_cpuid_entry2 {
    let (eax, ebx, ecx) = match index {
        0 => (0, 1, (LEVEL_SMT << 8) | index),
        1 => (core_shift(cpus), u32::from(cpus), (LEVEL_CORE << 8) | index),
        _ => (0, 0, index),
    };
    kvm_cpuid_entry2 {
        function,
        index,
        flags: kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
        eax,
        ebx,
        ecx,
        edx: apic_id,
        ..Default::default()
    }
}

/// Paging features the vCPU may show. An IOMMU that walks CPU-format page tables for shared virtual addressing
/// must support every paging mode the CPU has: Linux's `intel_svm_check` refuses SVM with an error line when the
/// CPU has LA57 and the VT-d unit no CAP.FL5LP, or 1 GiB pages and no CAP.FL1GP. Real platforms pair them; iovmm
/// pairs them by hiding from the vCPU what the unit cannot walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingLimits {
    /// CPUID.(EAX=7,ECX=0):ECX.LA57: 5-level paging.
    pub la57: bool,
    /// CPUID.8000_0001:EDX.Page1GB: 1 GiB pages.
    pub gbpages: bool,
}

impl PagingLimits {
    /// No limit: whatever KVM offers.
    pub const NONE: Self = Self {
        la57: true,
        gbpages: true,
    };
}

/// CPUID.(EAX=7,ECX=0):ECX bit 16: LA57.
const ECX_LA57: u32 = 1 << 16;
/// CPUID.8000_0001:EDX bit 26: Page1GB.
const EDX_PAGE1GB: u32 = 1 << 26;
const LEAF_STRUCTURED_EXT_FEATURES: u32 = 0x7;

/// Adjusts KVM's supported CPUID for vCPU `apic_id` of `cpus`, showing only the paging modes `paging` allows.
pub fn for_vcpu(
    supported: &CpuId,
    apic_id: u8,
    cpus: u8,
    paging: PagingLimits,
) -> Vec<kvm_cpuid_entry2> {
    let id = u32::from(apic_id);
    let mut out: Vec<kvm_cpuid_entry2> = Vec::with_capacity(supported.as_slice().len() + 3);
    let mut topology_leaves = Vec::new();
    for e in supported.as_slice() {
        let mut e = *e;
        match e.function {
            LEAF_FEATURES => {
                // EBX[31:24] initial APIC id, [23:16] logical processors per package, [15:8] CLFLUSH size/8.
                e.ebx = (id << 24) | (u32::from(cpus) << 16) | (8 << 8);
                e.ecx |= ECX_HYPERVISOR;
                e.edx |= EDX_HTT;
            }
            LEAF_CACHE_PARAMS => {
                // EAX[31:26]: cores per package - 1; EAX[25:14]: threads sharing this cache - 1.
                let shared = if (e.eax >> 5) & 7 >= 3 {
                    u32::from(cpus) - 1
                } else {
                    0
                };
                e.eax = (e.eax & 0x3fff) | (shared << 14) | ((u32::from(cpus) - 1) << 26);
            }
            LEAF_EXT_TOPOLOGY | LEAF_V2_EXT_TOPOLOGY => {
                if !topology_leaves.contains(&e.function) {
                    topology_leaves.push(e.function);
                }
                continue;
            }
            LEAF_STRUCTURED_EXT_FEATURES if e.index == 0 && !paging.la57 => e.ecx &= !ECX_LA57,
            LEAF_EXT_FEATURES => {
                e.ecx &= !(ECX_TOPOEXT | ECX_CMP_LEGACY);
                if !paging.gbpages {
                    e.edx &= !EDX_PAGE1GB;
                }
            }
            LEAF_ADDR_SIZES => {
                // ECX[15:12] ApicIdSize, [7:0] NC (cores - 1): AMD's view of the same topology.
                e.ecx = (core_shift(cpus) << 12) | (u32::from(cpus) - 1);
            }
            LEAF_AMD_EXT_APIC_ID => continue,
            _ => {}
        }
        out.push(e);
    }
    // Leaf 0xb always; 0x1f only if KVM offered it (max basic leaf covers it then).
    if !topology_leaves.contains(&LEAF_EXT_TOPOLOGY) {
        topology_leaves.push(LEAF_EXT_TOPOLOGY);
    }
    for function in topology_leaves {
        for index in 0..3 {
            out.push(topology_entry(function, index, id, cpus));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported() -> CpuId {
        let entries = [
            kvm_cpuid_entry2 {
                function: 0,
                eax: 0xd,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 1,
                ebx: 0xffff_ffff,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 4,
                index: 0,
                eax: (1 << 5) | 0x3fc0_0000 | 0x1,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 4,
                index: 3,
                eax: (3 << 5) | 0x3,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0xb,
                index: 0,
                edx: 77,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0x8000_0001,
                ecx: ECX_TOPOEXT | 1,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0x8000_0008,
                eax: 0x3030,
                ecx: 0xffff,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0x8000_001e,
                ..Default::default()
            },
        ];
        CpuId::from_entries(&entries).unwrap()
    }

    fn find(v: &[kvm_cpuid_entry2], f: u32, i: u32) -> kvm_cpuid_entry2 {
        *v.iter().find(|e| e.function == f && e.index == i).unwrap()
    }

    #[test]
    fn apic_ids_are_consistent() {
        let v = for_vcpu(&supported(), 3, 4, PagingLimits::NONE);
        assert_eq!(find(&v, 1, 0).ebx >> 24, 3);
        assert_eq!((find(&v, 1, 0).ebx >> 16) & 0xff, 4);
        assert_ne!(find(&v, 1, 0).ecx & ECX_HYPERVISOR, 0);
        for i in 0..3 {
            assert_eq!(find(&v, 0xb, i).edx, 3);
        }
        assert_eq!(find(&v, 0xb, 1).eax, 2);
        assert_eq!(find(&v, 0xb, 1).ebx, 4);
        assert_eq!(find(&v, 0xb, 2).ecx & 0xff00, 0);
        assert_eq!(v.iter().filter(|e| e.function == 0xb).count(), 3);
    }

    #[test]
    fn amd_topology_matches_and_topoext_hidden() {
        let v = for_vcpu(&supported(), 0, 3, PagingLimits::NONE);
        assert_eq!(find(&v, 0x8000_0001, 0).ecx & ECX_TOPOEXT, 0);
        assert_eq!(find(&v, 0x8000_0008, 0).ecx, (2 << 12) | 2);
        assert_eq!(find(&v, 0x8000_0008, 0).eax, 0x3030);
        assert!(!v.iter().any(|e| e.function == 0x8000_001e));
    }

    #[test]
    fn cache_leaf_core_count() {
        let v = for_vcpu(&supported(), 0, 8, PagingLimits::NONE);
        assert_eq!(find(&v, 4, 0).eax >> 26, 7);
        assert_eq!((find(&v, 4, 0).eax >> 14) & 0xfff, 0);
        assert_eq!((find(&v, 4, 3).eax >> 14) & 0xfff, 7);
        assert_eq!(core_shift(1), 0);
        assert_eq!(core_shift(5), 3);
    }

    #[test]
    fn paging_limits_hide_la57_and_gbpages() {
        let mut entries = supported().as_slice().to_vec();
        entries.push(kvm_cpuid_entry2 {
            function: 7,
            ecx: ECX_LA57 | 1,
            ..Default::default()
        });
        entries[5].edx = EDX_PAGE1GB | 1;
        let cpuid = CpuId::from_entries(&entries).unwrap();
        let all = for_vcpu(&cpuid, 0, 1, PagingLimits::NONE);
        assert_eq!(find(&all, 7, 0).ecx, ECX_LA57 | 1);
        assert_eq!(find(&all, 0x8000_0001, 0).edx, EDX_PAGE1GB | 1);
        let limits = PagingLimits {
            la57: false,
            gbpages: false,
        };
        let v = for_vcpu(&cpuid, 0, 1, limits);
        assert_eq!(find(&v, 7, 0).ecx, 1);
        assert_eq!(find(&v, 0x8000_0001, 0).edx, 1);
    }
}
