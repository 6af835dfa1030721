//! The engine in ring 0: the integer ESN (Kleyko et al.) and the Q1.15 sparse ESN from
//! `echos_core::integer` run here without an FPU and must reproduce the host's trajectories bit
//! for bit. `cargo xtask test` computes both digests natively on the host and passes them on the
//! command line (`int_esn_digest=`, `fixed_esn_digest=`); the constants in `echos_core` are the
//! host's recorded values, checked too. The `*_digest_step_ns` figures are per step including
//! input generation and hashing (instructions under -icount), not the bare step.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;

use echos_core::integer::{
    self, CanonicalFixedEsnStorage, CanonicalIntEsnStorage, FixedEsn, FixedEsnBuffers,
    FixedEsnConfig, FixedEsnLayout,
};
use echos_kpolicy::pool::PoolBlock;

use super::Kernel;
use crate::{arch, ensure, kernel_test, kprintln};

fn expected_digest(k: &Kernel, key: &str, recorded: u64) -> Result<u64, String> {
    match k.boot.arg(key) {
        Some(v) => {
            let hex = v.trim_start_matches("0x");
            let host = u64::from_str_radix(hex, 16)
                .map_err(|_| alloc::format!("{key}={v} on the command line is not a hex u64"))?;
            ensure!(
                host == recorded,
                "host digest {host:#018x} differs from the recorded {recorded:#018x}"
            );
            Ok(host)
        }
        None => {
            kprintln!(
                "note: no {key}= on the command line; comparing with the recorded host digest"
            );
            Ok(recorded)
        }
    }
}

pub fn integer_esn_digest_matches_host(k: &mut Kernel) -> Result<(), String> {
    let expected = expected_digest(k, "int_esn_digest", integer::CANONICAL_INT_ESN_DIGEST)?;
    let mut storage = Box::new(CanonicalIntEsnStorage::new());
    let t0 = arch::tsc::read();
    let got = integer::canonical_int_esn_digest(&mut storage).map_err(|e| alloc::format!("{e}"))?;
    let ns = k.time.clock.ticks_to_ns(arch::tsc::read() - t0);
    kprintln!("digest int_esn {got:#018x}");
    kprintln!(
        "metric int_esn_256_digest_step_ns {} ns",
        ns / u64::from(integer::DIGEST_STEPS)
    );
    ensure!(
        got == expected,
        "kernel digest {got:#018x}, host {expected:#018x}"
    );
    Ok(())
}
kernel_test!(integer_esn_digest_matches_host);

pub fn fixed_esn_digest_matches_host(k: &mut Kernel) -> Result<(), String> {
    let expected = expected_digest(k, "fixed_esn_digest", integer::CANONICAL_FIXED_ESN_DIGEST)?;
    let mut storage = Box::new(CanonicalFixedEsnStorage::new());
    let t0 = arch::tsc::read();
    let got =
        integer::canonical_fixed_esn_digest(&mut storage).map_err(|e| alloc::format!("{e}"))?;
    let ns = k.time.clock.ticks_to_ns(arch::tsc::read() - t0);
    kprintln!("digest fixed_esn {got:#018x}");
    kprintln!(
        "metric fixed_esn_200_digest_step_ns {} ns",
        ns / u64::from(integer::DIGEST_STEPS)
    );
    ensure!(
        got == expected,
        "kernel digest {got:#018x}, host {expected:#018x}"
    );
    Ok(())
}
kernel_test!(fixed_esn_digest_matches_host);

/// A 1000-unit reservoir, the top of the range the pools are sized for.
const LARGE: FixedEsnConfig = FixedEsnConfig {
    units: 1000,
    seed: 0xEC40_1000,
    ..integer::CANONICAL_FIXED_ESN
};

fn digest_of(esn: &mut FixedEsn<'_>, steps: u32) -> Result<u64, String> {
    let mut input = [0i32; 2];
    esn.digest(steps, integer::DIGEST_INPUT_SEED, &mut input)
        .map_err(|e| alloc::format!("{e}"))
}

fn reservoir_in_pool_memory_matches_heap_memory(k: &mut Kernel) -> Result<(), String> {
    let l = FixedEsnLayout::of(&LARGE);
    // Reference run on heap buffers.
    let (mut ro, mut co, mut va) = (
        vec![0u32; l.units + 1],
        vec![0u16; l.nnz],
        vec![0i16; l.nnz],
    );
    let (mut wi, mut bi) = (vec![0i16; l.units * l.inputs], vec![0i16; l.units]);
    let (mut st, mut sc) = (vec![0i16; l.units], vec![0i16; l.units]);
    let mut heap_esn = FixedEsn::new(
        LARGE,
        FixedEsnBuffers {
            row_offsets: &mut ro,
            columns: &mut co,
            values: &mut va,
            w_in: &mut wi,
            bias: &mut bi,
            state: &mut st,
            scratch: &mut sc,
        },
    )
    .map_err(|e| alloc::format!("{e}"))?;
    let reference = digest_of(&mut heap_esn, 100)?;

    // The same reservoir on pool blocks: what a kernel reservoir object will own.
    let pool = &mut k.memory.reservoir_pool;
    let sizes = [
        (l.units + 1) * 4,
        l.nnz * 2,
        l.nnz * 2,
        l.units * l.inputs * 2,
        l.units * 2,
        l.units * 2,
        l.units * 2,
    ];
    let mut blocks: [Option<PoolBlock<'static>>; 7] = Default::default();
    for (slot, size) in blocks.iter_mut().zip(sizes) {
        *slot = Some(pool.alloc(size, 16).map_err(|e| alloc::format!("{e}"))?);
    }
    ensure!(
        pool.stats().used == l.bytes(),
        "pool holds {} bytes, the layout says {}",
        pool.stats().used,
        l.bytes()
    );
    let result = (|| {
        let [b0, b1, b2, b3, b4, b5, b6] = &mut blocks;
        let row_offsets = b0
            .as_mut()
            .ok_or("block")?
            .zeroed_as::<u32>()
            .map_err(|e| alloc::format!("{e}"))?;
        let columns = b1
            .as_mut()
            .ok_or("block")?
            .zeroed_as::<u16>()
            .map_err(|e| alloc::format!("{e}"))?;
        let values = b2
            .as_mut()
            .ok_or("block")?
            .zeroed_as::<i16>()
            .map_err(|e| alloc::format!("{e}"))?;
        let w_in = b3
            .as_mut()
            .ok_or("block")?
            .zeroed_as::<i16>()
            .map_err(|e| alloc::format!("{e}"))?;
        let bias = b4
            .as_mut()
            .ok_or("block")?
            .zeroed_as::<i16>()
            .map_err(|e| alloc::format!("{e}"))?;
        let state = b5
            .as_mut()
            .ok_or("block")?
            .zeroed_as::<i16>()
            .map_err(|e| alloc::format!("{e}"))?;
        let scratch = b6
            .as_mut()
            .ok_or("block")?
            .zeroed_as::<i16>()
            .map_err(|e| alloc::format!("{e}"))?;
        let mut esn = FixedEsn::new(
            LARGE,
            FixedEsnBuffers {
                row_offsets,
                columns,
                values,
                w_in,
                bias,
                state,
                scratch,
            },
        )
        .map_err(|e| alloc::format!("{e}"))?;
        let t0 = arch::tsc::read();
        let d = digest_of(&mut esn, 100)?;
        let ns = k.time.clock.ticks_to_ns(arch::tsc::read() - t0);
        kprintln!("metric fixed_esn_1000_digest_step_ns {} ns", ns / 100);
        Ok::<u64, String>(d)
    })();
    for b in blocks.iter_mut() {
        if let Some(b) = b.take() {
            pool.free(b).map_err(|e| alloc::format!("{e}"))?;
        }
    }
    let pooled = result?;
    ensure!(
        pooled == reference,
        "pool-backed digest {pooled:#018x}, heap-backed {reference:#018x}"
    );
    ensure!(pool.stats().used == 0, "pool not empty afterwards");
    Ok(())
}
kernel_test!(reservoir_in_pool_memory_matches_heap_memory);
