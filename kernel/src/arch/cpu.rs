//! What the CPU offers, read once from CPUID.

use raw_cpuid::CpuId;

#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub apic: bool,
    pub x2apic: bool,
    pub tsc_deadline: bool,
    #[expect(
        dead_code,
        reason = "detected at boot for the record; nothing depends on it yet"
    )]
    pub invariant_tsc: bool,
    pub nx: bool,
}

pub fn features() -> Features {
    let cpuid = CpuId::new();
    let fi = cpuid.get_feature_info();
    let ext = cpuid.get_extended_processor_and_feature_identifiers();
    let apm = cpuid.get_advanced_power_mgmt_info();
    Features {
        apic: fi.as_ref().is_some_and(|f| f.has_apic()),
        x2apic: fi.as_ref().is_some_and(|f| f.has_x2apic()),
        tsc_deadline: fi.as_ref().is_some_and(|f| f.has_tsc_deadline()),
        invariant_tsc: apm.is_some_and(|a| a.has_invariant_tsc()),
        nx: ext.is_some_and(|e| e.has_execute_disable()),
    }
}

/// Whether CPUID names KVM as the hypervisor (leaf 0x40000000, "KVMKVMKVM").
pub fn hypervisor_is_kvm() -> bool {
    CpuId::new()
        .get_hypervisor_info()
        .is_some_and(|h| h.identify() == raw_cpuid::Hypervisor::KVM)
}

pub fn vendor_and_brand(buf: &mut [u8; 64]) -> &str {
    let cpuid = CpuId::new();
    let brand = cpuid.get_processor_brand_string();
    let s = brand.as_ref().map(|b| b.as_str()).unwrap_or("unknown CPU");
    let n = s.len().min(buf.len());
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    core::str::from_utf8(&buf[..n])
        .unwrap_or("unknown CPU")
        .trim()
}
