//! The kernel test registry: `kernel_test!` places a descriptor in the `.kernel_tests` linker
//! section and `registered` reads them all back, so tests in any module run in one boot without a
//! list to maintain (the scheme of Asterinas' ostd-test, on the stable toolchain).

extern crate alloc;
use alloc::string::String;

/// One kernel test: a name and a function over the kernel context `C`.
#[repr(C)]
pub struct KernelTest<C: 'static> {
    pub name: &'static str,
    pub run: fn(&mut C) -> Result<(), String>,
}

extern "C" {
    static __kernel_tests_start: u8;
    static __kernel_tests_end: u8;
}

/// Every registered test, in link order.
pub fn registered<C>() -> &'static [KernelTest<C>] {
    let start = core::ptr::addr_of!(__kernel_tests_start) as *const KernelTest<C>;
    let end = core::ptr::addr_of!(__kernel_tests_end) as usize;
    let n = (end - start as usize) / core::mem::size_of::<KernelTest<C>>();
    // SAFETY: only `kernel_test!` puts data in `.kernel_tests`, always a `KernelTest<Kernel>`
    // (the kernel's one context type, which is the `C` every caller uses); the linker script
    // aligns the section and the descriptors are immutable statics.
    unsafe { core::slice::from_raw_parts(start, n) }
}

/// Registers `fn name(&mut Kernel) -> Result<(), String>` as a kernel test.
#[macro_export]
macro_rules! kernel_test {
    ($name:ident) => {
        const _: () = {
            // The one attribute the test registry needs; it only places a descriptor.
            #[allow(unsafe_code)]
            #[used]
            #[link_section = ".kernel_tests"]
            static TEST: $crate::arch::ktest::KernelTest<$crate::Kernel> =
                $crate::arch::ktest::KernelTest {
                    name: concat!(module_path!(), "::", stringify!($name)),
                    run: $name,
                };
        };
    };
}
