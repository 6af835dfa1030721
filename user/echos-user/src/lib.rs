//! The echo-os user library: typed syscalls over the `echos-abi` contract (the same
//! `Request` encoding the kernel decodes), the program entry macro and the panic handler.
#![no_std]

pub use echos_abi as abi;
use echos_abi::{Errno, Request};

/// Issues a raw syscall: number in `rax`, arguments in `rdi, rsi, rdx, r10, r8, r9`.
pub fn raw_syscall(number: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: `syscall` enters the kernel, which preserves every register but `rax` (the
    // result), `rcx` and `r11` (declared clobbered) and validates every argument itself.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number as i64 => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// What a [`probe_syscall`] saw come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// `rax`: the result or error code.
    pub ret: i64,
    /// Whether `rdi, rsi, rdx, r10, r8, r9`, `r14`, `r15` and the stack pointer came back as
    /// they went in (the ABI preserves every register but `rax`, `rcx` and `r11`).
    pub preserved: bool,
}

/// A syscall that also checks the kernel's side of the register contract: the six argument
/// registers and `keep` (loaded into `r14`, `r15`) must come back unchanged. With `rsp =
/// Some(v)` the call is made with the stack pointer set to `v` (into the kernel, unmapped,
/// non-canonical: the kernel must never touch the user stack) and restored after.
pub fn probe_syscall(number: u64, a: [u64; 6], keep: [u64; 2], rsp: Option<u64>) -> ProbeResult {
    let ret: i64;
    let mut o = a;
    let mut k = keep;
    let mut stack_kept = true;
    match rsp {
        // SAFETY: as `raw_syscall`; the extra registers are declared in and out.
        None => unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") number as i64 => ret,
                inout("rdi") o[0],
                inout("rsi") o[1],
                inout("rdx") o[2],
                inout("r10") o[3],
                inout("r8") o[4],
                inout("r9") o[5],
                inout("r14") k[0],
                inout("r15") k[1],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        },
        Some(bad) => {
            let after: u64;
            // SAFETY: as above. Between the moves nothing uses the stack: `syscall` does not,
            // and an interrupt or exception taken in ring 3 switches to the kernel stack of the
            // TSS; `r12` (preserved by the kernel) carries the real stack pointer across.
            unsafe {
                core::arch::asm!(
                "mov r12, rsp",
                "mov rsp, r13",
                "syscall",
                "xchg r12, rsp",
                inlateout("rax") number as i64 => ret,
                inout("rdi") o[0],
                inout("rsi") o[1],
                inout("rdx") o[2],
                inout("r10") o[3],
                inout("r8") o[4],
                inout("r9") o[5],
                inout("r14") k[0],
                inout("r15") k[1],
                inout("r13") bad => _,
                out("r12") after,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
                );
            }
            stack_kept = after == bad;
        }
    }
    ProbeResult {
        ret,
        preserved: o == a && k == keep && stack_kept,
    }
}

/// Issues a typed call and decodes its result.
pub fn call(req: Request) -> Result<u64, Errno> {
    let (number, a) = req.encode();
    decode(raw_syscall(number, a))
}

/// A raw result: `>= 0` is a value, `< 0` an error code (an unknown code maps to `BadSyscall`
/// so the caller still sees a failure).
pub fn decode(ret: i64) -> Result<u64, Errno> {
    Errno::decode_return(ret).map_err(|e| e.unwrap_or(Errno::BadSyscall))
}

pub fn exit(code: i64) -> ! {
    let _ = call(Request::Exit { code });
    // The kernel never returns from exit; should it, spin rather than run off the end.
    loop {
        core::hint::spin_loop();
    }
}

pub fn mutex_lock(mutex: u16) -> Result<u64, Errno> {
    call(Request::MutexLock { mutex })
}

pub fn mutex_unlock(mutex: u16) -> Result<u64, Errno> {
    call(Request::MutexUnlock { mutex })
}

pub fn yield_now() -> Result<u64, Errno> {
    call(Request::Yield)
}

/// `sleep_until_next_period`: ends this period's job; returns the period it wakes in.
pub fn sleep_until_next_period() -> Result<u64, Errno> {
    call(Request::SleepUntilNextPeriod)
}

/// A log line formatted into a fixed buffer (no allocator in user programs); a line longer
/// than the buffer is cut at its end.
pub struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl LineBuf {
    pub const fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }
    pub fn as_str(&self) -> &str {
        // Only whole `str` pieces are ever copied in, so the prefix is valid UTF-8 unless a cut
        // split a character; then the valid prefix is logged.
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `logln!("fmt", args..)`: one formatted log line.
#[macro_export]
macro_rules! logln {
    ($($arg:tt)*) => {{
        let mut line = $crate::LineBuf::new();
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!($($arg)*));
        $crate::log(line.as_str())
    }};
}

pub fn log(msg: &str) -> Result<u64, Errno> {
    log_bytes(msg.as_ptr() as u64, msg.len() as u64)
}

/// `log_write` on any pointer: how the tests hand the kernel bad ones.
pub fn log_bytes(ptr: u64, len: u64) -> Result<u64, Errno> {
    call(Request::LogWrite { ptr, len })
}

/// Defines `_start(arg)` calling `main(arg) -> i64` and exiting with its result.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        #[link_section = ".text._start"]
        pub extern "C" fn _start(arg: u64) -> ! {
            $crate::exit($main(arg))
        }
    };
}

/// The memory functions the compiler calls. A hosted target expects them from libc, which user
/// programs do not link; volatile accesses keep the compiler from turning these loops back into
/// calls to themselves.
pub mod mem {
    /// # Safety
    /// `dst` and `src` valid for `n` bytes, not overlapping.
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        for i in 0..n {
            // SAFETY: in bounds by the caller's contract.
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
        dst
    }

    /// # Safety
    /// `dst` and `src` valid for `n` bytes (they may overlap).
    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dst as usize) < (src as usize) {
            for i in 0..n {
                // SAFETY: in bounds; copying upwards never overwrites a byte still to be read.
                unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
            }
        } else {
            for i in (0..n).rev() {
                // SAFETY: in bounds; copying downwards never overwrites a byte still to be read.
                unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
            }
        }
        dst
    }

    /// # Safety
    /// `dst` valid for `n` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
        for i in 0..n {
            // SAFETY: in bounds by the caller's contract.
            unsafe { dst.add(i).write_volatile(c as u8) };
        }
        dst
    }

    /// # Safety
    /// `a` and `b` valid for `n` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        for i in 0..n {
            // SAFETY: in bounds by the caller's contract.
            let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
            if x != y {
                return i32::from(x) - i32::from(y);
            }
        }
        0
    }

    /// # Safety
    /// `a` and `b` valid for `n` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: same contract.
        unsafe { memcmp(a, b, n) }
    }
}

/// The precompiled `core` of a hosted target refers to the unwinding personality routine; user
/// programs abort on panic and never unwind, so it is never called, only linked.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(-100)
}

/// Reservoir calls: thin wrappers that encode the argument structs of `echos-abi`.
pub mod reservoir {
    use super::call;
    use echos_abi::{
        CapHandle, Errno, IntrospectArgs, Request, ReservoirCreateArgs, ReservoirDebugInfo,
        ReservoirModifyWeightsArgs, ReservoirReadStateArgs, ReservoirStepArgs, Rights,
        WeightMatrix,
    };

    fn handle(raw: u64) -> Result<CapHandle, Errno> {
        CapHandle::from_raw(raw)
    }

    pub fn create(args: &ReservoirCreateArgs) -> Result<CapHandle, Errno> {
        let bytes = args.to_bytes();
        handle(call(Request::ReservoirCreate {
            args: bytes.as_ptr() as u64,
        })?)
    }

    /// `args` at any address: how the tests hand the kernel bad pointers.
    pub fn create_at(args: u64) -> Result<CapHandle, Errno> {
        handle(call(Request::ReservoirCreate { args })?)
    }

    /// One step on Q16.16 inputs; the readout (Q16.16) lands in `output`.
    pub fn step(h: CapHandle, input: &[i32], output: &mut [i32]) -> Result<u64, Errno> {
        step_raw(
            h,
            input.as_ptr() as u64,
            input.len() as u32,
            output.as_mut_ptr() as u64,
            output.len() as u32,
        )
    }

    pub fn step_raw(
        h: CapHandle,
        input_ptr: u64,
        input_len: u32,
        output_ptr: u64,
        output_len: u32,
    ) -> Result<u64, Errno> {
        let bytes = ReservoirStepArgs {
            handle: h,
            input_ptr,
            output_ptr,
            input_len,
            output_len,
        }
        .to_bytes();
        call(Request::ReservoirStep {
            args: bytes.as_ptr() as u64,
        })
    }

    /// The state in Q16.16, one entry per unit.
    pub fn read_state(h: CapHandle, out: &mut [i32]) -> Result<u64, Errno> {
        read_state_raw(h, out.as_mut_ptr() as u64, out.len() as u32)
    }

    /// `read_state` into any address: how the tests hand the kernel bad buffers.
    pub fn read_state_raw(h: CapHandle, buf_ptr: u64, buf_len: u32) -> Result<u64, Errno> {
        let bytes = ReservoirReadStateArgs {
            handle: h,
            buf_ptr,
            buf_len,
            _pad: 0,
        }
        .to_bytes();
        call(Request::ReservoirReadState {
            args: bytes.as_ptr() as u64,
        })
    }

    /// Writes Q16.16 values in [-1, 1) into `matrix` from `offset`.
    pub fn modify_weights(
        h: CapHandle,
        matrix: WeightMatrix,
        offset: u32,
        values: &[i32],
    ) -> Result<u64, Errno> {
        let ptr = values.as_ptr() as u64;
        modify_weights_raw(h, matrix, offset, ptr, values.len() as u32)
    }

    /// `modify_weights` with the values at any address: how the tests hand the kernel bad ones.
    pub fn modify_weights_raw(
        h: CapHandle,
        matrix: WeightMatrix,
        offset: u32,
        data_ptr: u64,
        count: u32,
    ) -> Result<u64, Errno> {
        let bytes = ReservoirModifyWeightsArgs {
            handle: h,
            data_ptr,
            matrix,
            offset,
            count,
            _pad: 0,
        }
        .to_bytes();
        call(Request::ReservoirModifyWeights {
            args: bytes.as_ptr() as u64,
        })
    }

    pub fn introspect(h: CapHandle) -> Result<ReservoirDebugInfo, Errno> {
        let mut out = [0u8; ReservoirDebugInfo::SIZE];
        let bytes = IntrospectArgs {
            handle: h,
            out_ptr: out.as_mut_ptr() as u64,
        }
        .to_bytes();
        call(Request::ReservoirIntrospect {
            args: bytes.as_ptr() as u64,
        })?;
        ReservoirDebugInfo::from_bytes(&out)
    }

    /// Maps the weights read-only into this task; returns their address (row offsets u32 ×
    /// N+1, columns u16 × nnz, values i16 × nnz, input weights i16 × N·K, bias i16 × N).
    pub fn map_weights(h: CapHandle) -> Result<u64, Errno> {
        call(Request::ReservoirMapWeights { handle: h })
    }

    pub fn derive(h: CapHandle, rights: Rights) -> Result<CapHandle, Errno> {
        handle(call(Request::CapDerive { handle: h, rights })?)
    }

    pub fn revoke(h: CapHandle) -> Result<u64, Errno> {
        call(Request::CapRevoke { handle: h })
    }
}

/// Seeded pseudo-random numbers for user programs: the workspace's one SplitMix64.
pub mod rng {
    pub use echos_rng::SplitMix64;
}
