//! Every kernel stack, each with an unmapped guard page directly below it: an overflow faults on
//! the guard instead of silently overwriting whatever lies below.

use core::cell::UnsafeCell;

pub const PAGE_SIZE: usize = 4096;

/// A stack of `N` bytes preceded by a guard page; page alignment keeps the guard a whole page.
#[repr(C, align(4096))]
pub struct GuardedStack<const N: usize> {
    guard: UnsafeCell<[u8; PAGE_SIZE]>,
    stack: UnsafeCell<[u8; N]>,
}

// SAFETY: the memory is only ever used as a CPU stack (by the one CPU) or, for the guard, never
// touched at all; Rust code holds no references into it.
unsafe impl<const N: usize> Sync for GuardedStack<N> {}

impl<const N: usize> GuardedStack<N> {
    pub const fn new() -> Self {
        Self {
            guard: UnsafeCell::new([0; PAGE_SIZE]),
            stack: UnsafeCell::new([0; N]),
        }
    }
    pub fn guard_page(&self) -> u64 {
        self.guard.get() as u64
    }
    pub fn bottom(&self) -> u64 {
        self.stack.get() as u64
    }
    /// The initial stack pointer (stacks grow down), 16-byte aligned.
    pub fn top(&self) -> u64 {
        self.bottom() + N as u64
    }
}

pub const IST_STACK_SIZE: usize = 16 * 1024;
/// Interrupt stack for double faults (a kernel stack overflow ends here).
pub static DOUBLE_FAULT_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();
/// Interrupt stack for NMIs, which may arrive at any instruction, even mid stack switch.
pub static NMI_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();
/// Interrupt stack for machine checks.
pub static MACHINE_CHECK_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();
/// A stack the tests deliberately overflow to show the guard page works.
pub static OVERFLOW_TEST_STACK: GuardedStack<{ 16 * 1024 }> = GuardedStack::new();

pub const THREAD_STACK_SIZE: usize = 32 * 1024;
/// Kernel threads at most (one stack each).
pub const THREAD_STACK_COUNT: usize = 6;
/// The kernel threads' stacks, each with its own guard page.
pub static THREAD_STACKS: [GuardedStack<THREAD_STACK_SIZE>; THREAD_STACK_COUNT] =
    [const { GuardedStack::new() }; THREAD_STACK_COUNT];

/// One stack's name and layout, for paging (which unmaps the guards) and for reports.
#[derive(Clone, Copy, Debug)]
pub struct StackInfo {
    pub name: &'static str,
    pub guard_page: u64,
    pub bottom: u64,
    pub top: u64,
}

pub fn all() -> [StackInfo; 5 + THREAD_STACK_COUNT] {
    let (boot_guard, boot_bottom) = super::boot::boot_stack_layout();
    let info = |name, guard_page, bottom, top| StackInfo {
        name,
        guard_page,
        bottom,
        top,
    };
    let fixed = [
        info(
            "boot",
            boot_guard,
            boot_bottom,
            boot_bottom + super::boot::BOOT_STACK_SIZE as u64,
        ),
        info(
            "double-fault",
            DOUBLE_FAULT_STACK.guard_page(),
            DOUBLE_FAULT_STACK.bottom(),
            DOUBLE_FAULT_STACK.top(),
        ),
        info(
            "nmi",
            NMI_STACK.guard_page(),
            NMI_STACK.bottom(),
            NMI_STACK.top(),
        ),
        info(
            "machine-check",
            MACHINE_CHECK_STACK.guard_page(),
            MACHINE_CHECK_STACK.bottom(),
            MACHINE_CHECK_STACK.top(),
        ),
        info(
            "overflow-test",
            OVERFLOW_TEST_STACK.guard_page(),
            OVERFLOW_TEST_STACK.bottom(),
            OVERFLOW_TEST_STACK.top(),
        ),
    ];
    core::array::from_fn(|i| match fixed.get(i) {
        Some(s) => *s,
        None => {
            let t = &THREAD_STACKS[i - fixed.len()];
            info("thread", t.guard_page(), t.bottom(), t.top())
        }
    })
}
