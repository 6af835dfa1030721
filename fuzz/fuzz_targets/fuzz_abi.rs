//! Syscall decoding from ring 3: register decoding (`Request::decode`), every argument struct's
//! `from_bytes`, capability handles and rights, and user-pointer checks against an address
//! space the input lays out. Decoded values must encode back to themselves; an accepted user
//! range must lie in regions that allow the access.
#![no_main]

use echos_abi::{
    CapHandle, EchoContext, IntrospectArgs, Request, ReservoirCreateArgs, ReservoirDebugInfo,
    ReservoirModifyWeightsArgs, ReservoirReadStateArgs, ReservoirStepArgs, Rights,
};
use echos_kpolicy::uaccess::{Access, AddressSpace, Perms};
use libfuzzer_sys::fuzz_target;

/// Reads fixed-size fields off the input, zero-filled once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

macro_rules! round_trip {
    ($ty:ty, $input:expr) => {
        if let Ok(v) = <$ty>::from_bytes(&$input.take::<{ <$ty>::SIZE }>()) {
            assert_eq!(<$ty>::from_bytes(&v.to_bytes()), Ok(v));
        }
    };
}

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let mut input = Input(data);
    let number = input.u64() % 32;
    let regs: [u64; 6] = core::array::from_fn(|_| input.u64());
    if let Ok(req) = Request::decode(number, regs) {
        let (n, a) = req.encode();
        assert_eq!(Request::decode(n, a), Ok(req));
    }
    let raw = input.u64();
    if let Ok(h) = CapHandle::from_raw(raw) {
        assert_eq!(CapHandle::from_raw(h.to_raw()), Ok(h));
    }
    if let Ok(r) = Rights::from_bits(input.u64() & 0xff) {
        assert_eq!(Rights::from_bits(u64::from(r.bits())), Ok(r));
    }
    round_trip!(ReservoirCreateArgs, input);
    round_trip!(ReservoirStepArgs, input);
    round_trip!(ReservoirReadStateArgs, input);
    round_trip!(ReservoirModifyWeightsArgs, input);
    round_trip!(IntrospectArgs, input);
    round_trip!(EchoContext, input);
    round_trip!(ReservoirDebugInfo, input);

    // An address space of up to 8 regions (kept small and page-granular often enough that
    // checks hit them), then user ranges checked against it.
    let mut space = AddressSpace::<8>::new();
    let [n_regions] = input.take::<1>();
    for _ in 0..n_regions % 9 {
        let [flags] = input.take::<1>();
        let start = input.u64() >> (flags >> 4);
        let len = input.u64() >> (flags >> 2 & 3) * 16;
        let perms = Perms {
            read: flags & 1 != 0,
            write: flags & 2 != 0,
            execute: false,
        };
        let _ = space.map(start, len, perms);
    }
    let allows = |r: &echos_kpolicy::uaccess::Region, access: Access| match access {
        Access::Read => r.perms.read,
        Access::Write => r.perms.write,
    };
    while !input.0.is_empty() {
        let [flags] = input.take::<1>();
        let ptr = input.u64() >> (flags >> 4);
        let len = input.u64() >> (flags >> 2 & 3) * 16;
        let access = if flags & 1 == 0 {
            Access::Read
        } else {
            Access::Write
        };
        if let Ok(range) = space.check(ptr, len, access) {
            assert_eq!((range.start, range.len), (ptr, len));
            // Every byte is in an allowing region: walk the regions from ptr without gaps.
            let end = ptr + len;
            let mut cursor = ptr;
            for r in space.regions() {
                if r.start <= cursor && cursor < r.end {
                    assert!(allows(r, access), "{r:?} does not allow {access:?}");
                    cursor = r.end;
                }
            }
            assert!(
                cursor >= end,
                "[{ptr:#x}, {end:#x}) has an unmapped byte at {cursor:#x}"
            );
        }
        let size = 1u64 << (flags & 3);
        if let Ok(range) = space.check_array(ptr, len >> 3, size, size, access) {
            assert_eq!(range.len, (len >> 3) * size);
            assert_eq!(ptr % size, 0);
        }
    }
}
