//! FPU/SSE/AVX state of user tasks. The kernel itself is built soft-float and never touches
//! these registers; it turns them on for ring 3 (CR0/CR4, XCR0) and saves and restores each
//! user thread's state eagerly on every switch away from and back to it: XSAVE/XRSTOR of
//! x87+SSE+AVX when the CPU has XSAVE, else FXSAVE/FXRSTOR (x87+SSE, always present on x86_64).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use raw_cpuid::CpuId;

/// Bytes per save area; XSAVE's size for x87+SSE+AVX is 832, for every component at most ~2.7 KiB.
const AREA_SIZE: usize = 4096;
/// Save areas, one per kernel thread slot.
pub const AREAS: usize = super::stacks::THREAD_STACK_COUNT;
/// x87 | SSE | AVX.
const WANTED_XCR0: u64 = 0b111;
const MXCSR_DEFAULT: u32 = 0x1f80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FpuMode {
    /// Not saved: under the nested KVM, where ring-0 XSAVE aborts the VM.
    None = 0,
    Fxsave = 1,
    Xsave = 2,
}

static MODE: AtomicU8 = AtomicU8::new(FpuMode::None as u8);
static XCR0: AtomicU64 = AtomicU64::new(0);

#[repr(C, align(64))]
struct Area(UnsafeCell<[u8; AREA_SIZE]>);

// SAFETY: one CPU; an area is only touched by `init_area`, `save` and `restore`, each with
// interrupts off, for a thread that is not running at that moment (or is being switched out).
unsafe impl Sync for Area {}

static SAVE_AREAS: [Area; AREAS] = [const { Area(UnsafeCell::new([0; AREA_SIZE])) }; AREAS];

/// What `init` enabled, for the boot report.
#[derive(Debug, Clone, Copy)]
pub struct FpuInfo {
    pub mode: FpuMode,
    pub xcr0: u64,
    pub save_bytes: u32,
}

pub fn mode() -> FpuMode {
    match MODE.load(Ordering::Acquire) {
        2 => FpuMode::Xsave,
        1 => FpuMode::Fxsave,
        _ => FpuMode::None,
    }
}

/// Enables SSE (and XSAVE with AVX when present) for ring 3.
pub fn init() -> FpuInfo {
    let cpuid = CpuId::new();
    let fi = cpuid.get_feature_info();
    let xsave = fi.as_ref().is_some_and(|f| f.has_xsave());
    // SAFETY: CR0.EM off / MP on and CR4.OSFXSR/OSXMMEXCPT on are the architectural way to
    // enable SSE; the kernel (soft-float) emits no SSE instruction itself, so nothing changes
    // for ring 0. OSXSAVE only when CPUID has XSAVE.
    unsafe {
        let mut cr0: u64;
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 = (cr0 & !(1 << 2) & !(1 << 3)) | (1 << 1);
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nomem, nostack));
        let mut cr4: u64;
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        cr4 |= (1 << 9) | (1 << 10);
        if xsave {
            cr4 |= 1 << 18;
        }
        core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nomem, nostack));
    }
    if super::cpu::hypervisor_is_kvm() {
        // The nested "kvm-pvm" of this machine kind aborts the VM on XSAVE/XRSTOR (and any
        // SSE instruction) in ring 0, so user state cannot be switched there: ring 3 keeps
        // SSE/AVX, but tasks share those registers. The boot says so; the SIMD test skips.
        let xcr0 = if xsave { 0b11 } else { 0 };
        if xsave {
            // SAFETY: x87|SSE is always valid with OSXSAVE set.
            unsafe {
                core::arch::asm!("xsetbv", in("ecx") 0u32, in("eax") 3u32, in("edx") 0u32, options(nomem, nostack));
            }
        }
        MODE.store(FpuMode::None as u8, Ordering::Release);
        return FpuInfo {
            mode: FpuMode::None,
            xcr0,
            save_bytes: 0,
        };
    }
    if !xsave {
        MODE.store(FpuMode::Fxsave as u8, Ordering::Release);
        return FpuInfo {
            mode: FpuMode::Fxsave,
            xcr0: 0,
            save_bytes: 512,
        };
    }
    let supported = cpuid.get_extended_state_info().map_or(0b11, |s| {
        let mut m = 0b11u64;
        if s.xcr0_supports_avx_256() {
            m |= 0b100;
        }
        m
    });
    let xcr0 = supported & WANTED_XCR0;
    // SAFETY: XCR0 gets x87|SSE (always valid with OSXSAVE) plus AVX only when supported.
    unsafe {
        core::arch::asm!("xsetbv", in("ecx") 0u32, in("eax") xcr0 as u32, in("edx") (xcr0 >> 32) as u32, options(nomem, nostack));
    }
    let save_bytes = CpuId::new()
        .get_extended_state_info()
        .map_or(832, |s| s.xsave_area_size_enabled_features());
    XCR0.store(xcr0, Ordering::Release);
    MODE.store(FpuMode::Xsave as u8, Ordering::Release);
    FpuInfo {
        mode: FpuMode::Xsave,
        xcr0,
        save_bytes,
    }
}

fn area(slot: usize) -> *mut u8 {
    SAVE_AREAS[slot].0.get() as *mut u8
}

/// The initial state of a new user thread: every component in its reset state, MXCSR with all
/// exceptions masked.
pub fn init_area(slot: usize) {
    // SAFETY: the thread in `slot` is not running (it is being set up) and interrupts are off
    // while the scheduler prepares it; the area is 64-byte aligned and AREA_SIZE long.
    unsafe {
        let a = area(slot);
        core::ptr::write_bytes(a, 0, AREA_SIZE);
        // FCW (x87 control word) default, used by FXRSTOR; XRSTOR takes the x87 init state.
        a.cast::<u16>().write(0x037f);
        a.add(24).cast::<u32>().write(MXCSR_DEFAULT);
    }
}

/// Saves the current FPU/SIMD registers into `slot`'s area (the thread being switched out).
pub fn save(slot: usize) {
    let a = area(slot);
    let mask = XCR0.load(Ordering::Acquire);
    // SAFETY: interrupts are off (the scheduler switches with them off); the area is aligned
    // and large enough for the enabled components (checked against CPUID at init).
    unsafe {
        match mode() {
            FpuMode::Xsave => {
                core::arch::asm!("xsave64 [{}]", in(reg) a, in("eax") mask as u32, in("edx") (mask >> 32) as u32, options(nostack))
            }
            FpuMode::Fxsave => core::arch::asm!("fxsave64 [{}]", in(reg) a, options(nostack)),
            FpuMode::None => {}
        }
    }
}

/// Loads `slot`'s saved FPU/SIMD registers (the thread being switched in).
pub fn restore(slot: usize) {
    let a = area(slot);
    let mask = XCR0.load(Ordering::Acquire);
    // SAFETY: as `save`; the area holds either a state saved by `save` or the one `init_area`
    // wrote (a zero XSAVE header: every component from its init state, valid MXCSR).
    unsafe {
        match mode() {
            FpuMode::Xsave => {
                core::arch::asm!("xrstor64 [{}]", in(reg) a, in("eax") mask as u32, in("edx") (mask >> 32) as u32, options(nostack))
            }
            FpuMode::Fxsave => core::arch::asm!("fxrstor64 [{}]", in(reg) a, options(nostack)),
            FpuMode::None => {}
        }
    }
}
