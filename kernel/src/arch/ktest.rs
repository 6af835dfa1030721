//! The kernel test registry: `kernel_test!` places a descriptor in the `.kernel_tests` linker
//! section and `registered` reads them all back, so tests in any module run in one boot without a
//! list to maintain (the scheme of Asterinas' ostd-test, on the stable toolchain).
//!
//! Every test takes the same context, and the registry's types say which without naming it (it
//! lives above this layer): the suite implements [`Suite`] for [`KernelSuite`] once, and a
//! second implementation would not compile, so [`Context`] is one type.

extern crate alloc;
use alloc::string::String;

/// Names the context every kernel test takes; implemented once, for [`KernelSuite`].
pub trait Suite {
    type Context: 'static;
}

/// The kernel's test suite (no values: it only carries the [`Suite`] implementation).
pub enum KernelSuite {}

/// What every kernel test is handed.
pub type Context = <KernelSuite as Suite>::Context;

/// One kernel test: a name and a function over the suite's [`Context`].
#[repr(C)]
pub struct KernelTest {
    pub name: &'static str,
    pub run: fn(&mut Context) -> Result<(), String>,
}

extern "C" {
    static __kernel_tests_start: u8;
    static __kernel_tests_end: u8;
}

/// Every registered test, in link order.
pub fn registered() -> &'static [KernelTest] {
    let start = core::ptr::addr_of!(__kernel_tests_start) as *const KernelTest;
    let end = core::ptr::addr_of!(__kernel_tests_end) as usize;
    let n = (end - start as usize) / core::mem::size_of::<KernelTest>();
    // SAFETY: only `kernel_test!` puts data in `.kernel_tests`, always a `KernelTest` (one type:
    // it has no parameter); the linker script aligns the section and the descriptors are
    // immutable statics.
    unsafe { core::slice::from_raw_parts(start, n) }
}

/// Registers `fn name(&mut Context) -> Result<(), String>` as a kernel test.
#[macro_export]
macro_rules! kernel_test {
    ($name:ident) => {
        const _: () = {
            // The one attribute the test registry needs; it only places a descriptor.
            #[allow(unsafe_code)]
            #[used]
            #[link_section = ".kernel_tests"]
            static TEST: $crate::arch::ktest::KernelTest = $crate::arch::ktest::KernelTest {
                name: concat!(module_path!(), "::", stringify!($name)),
                run: $name,
            };
        };
    };
}
