//! Reservoirs as kernel objects reached through capabilities (`echos_kpolicy::caps`): create,
//! step, read state, modify weights (needs the write right), introspect, derive and revoke.
//! Each object is the Q1.15 sparse ESN of `echos_core::integer` plus a Q1.15 readout, a step
//! counter and the recent trajectory that introspection returns.
//!
//! A step rebuilds the `FixedEsn` view over the object's arrays (validation O(nnz)) and restores
//! the state the view's constructor clears (O(N)): the same order of work as the step itself,
//! allocation-free and deterministic; creation allocates the arrays once.
//!
//! Temporal isolation: the work that grows with a reservoir's size (generating it, stepping it,
//! rewriting its weights: milliseconds for the largest) runs with interrupts on, so the
//! scheduler can preempt the calling task there like in ring 3 — at the end of its partition's
//! window, or for a more urgent release. The call then holds the object's kernel mutex (priority
//! inheritance; a second call on the same object waits for it) and has the object out of the
//! table; everything else (decoding, capability checks, the allocation, the table) stays short
//! and runs with interrupts off, as the rest of the syscall path.

use alloc::vec::Vec;
use spin::Mutex;

use echos_abi::introspect::{
    DEBUG_STATE_UNITS, MEMORY_CAPACITY_UNKNOWN, TRAJECTORY_STEPS, TRAJECTORY_UNITS,
};
use echos_abi::{
    CapHandle, EchoContext, Errno, IntrospectArgs, ReservoirCreateArgs, ReservoirDebugInfo,
    ReservoirModifyWeightsArgs, ReservoirReadStateArgs, ReservoirStepArgs, Rights, Topology,
    WeightMatrix,
};
use echos_core::integer::{FixedEsn, FixedEsnBuffers, FixedEsnConfig, FixedEsnLayout};
use echos_kpolicy::caps::{CapSpace, ObjectId};

use crate::arch::uspace::Page;
use crate::config::{
    CAPS_PER_TASK, MAX_OBJECTS, MAX_THREADS, USER_MUTEXES, WEIGHTS_BASE, WEIGHTS_PER_OBJECT,
};
use crate::sched;
use crate::umem::{self, check_readable, check_writable, copy_in, copy_out};

/// Bias scale of kernel reservoirs (0.1, as the canonical fixed ESN).
const BIAS_SCALING_Q16: i32 = 6554;

struct Reservoir {
    cfg: FixedEsnConfig,
    topology: Topology,
    outputs: usize,
    nnz: usize,
    /// The weights, whole pages so they can be mapped read-only into tasks (zero-copy), laid
    /// out as row offsets (u32 × N+1), columns (u16 × nnz), values (i16 × nnz), input weights
    /// (i16 × N·K), bias (i16 × N), each right after the previous one.
    weights: Vec<Page>,
    /// The state (i16 × N, Q1.15) in a page of its own, which pipeline stages may map
    /// read-only next to the weights.
    state: Vec<Page>,
    scratch: Vec<i16>,
    saved: Vec<i16>,
    /// Q1.15, row-major `outputs × units`.
    readout: Vec<i16>,
    steps: u64,
    trajectory: [[i32; TRAJECTORY_UNITS]; TRAJECTORY_STEPS],
    /// Q16.16, measured on the host for the demo's reservoir; unknown otherwise.
    memory_capacity_q16: u32,
}

/// An object table entry.
#[expect(
    clippy::large_enum_variant,
    reason = "a fixed static table of MAX_OBJECTS entries; boxing would add a fallible allocation"
)]
enum Slot {
    Free,
    /// Being created: the call allocates and generates it with the slot held for it.
    Reserved,
    Ready(Reservoir),
    /// A call has it out of the table (it holds the object's mutex) while it works on it.
    InUse,
}

struct Objects {
    slots: [Slot; MAX_OBJECTS],
    caps: CapSpace<MAX_THREADS, CAPS_PER_TASK>,
}

static OBJECTS: Mutex<Objects> = Mutex::new(Objects {
    slots: [const { Slot::Free }; MAX_OBJECTS],
    caps: CapSpace::new(),
});

fn with<R>(f: impl FnOnce(&mut Objects) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut OBJECTS.lock()))
}

/// A task stopped: its capabilities (and those derived from them) are revoked.
pub fn task_stopped(slot: usize) {
    with(|o| {
        let _ = o.caps.stop_task(task(slot));
    })
}

/// Drops every object and capability (between test runs).
pub fn reset() {
    with(|o| {
        for s in o.slots.iter_mut() {
            *s = Slot::Free;
        }
        o.caps = CapSpace::new();
    })
}

fn q15_to_q16(v: i16) -> i32 {
    i32::from(v) << 1
}

fn task(slot: usize) -> u16 {
    slot as u16
}

fn read_args<const N: usize>(slot: usize, ptr: u64) -> Result<[u8; N], Errno> {
    let mut b = [0u8; N];
    copy_in(slot, ptr, &mut b)?;
    Ok(b)
}

/// Runs `f` with interrupts on, then restores the caller's state: the long part of a call, which
/// the scheduler may preempt. `f` must take no spin lock without turning interrupts off (a
/// preempted holder would stall the next taker), nor allocate or free.
fn preemptible<R>(f: impl FnOnce() -> R) -> R {
    let was_on = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::enable();
    let r = f();
    if !was_on {
        x86_64::instructions::interrupts::disable();
    }
    r
}

/// The kernel mutex of object `id` (above the user ones).
fn object_mutex(id: ObjectId) -> u16 {
    (USER_MUTEXES + id.0 as usize) as u16
}

/// Runs `f` on the object `h` names in `slot`'s table (with `needed` rights), holding the
/// object's mutex and with the object out of the table, so `f` may work on it preemptibly.
/// Outside a scheduler run (the kernel's own calls) the mutex is a no-op.
fn with_object<R>(
    slot: usize,
    h: CapHandle,
    needed: Rights,
    f: impl FnOnce(ObjectId, &mut Reservoir) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let id = with(|o| o.caps.lookup(task(slot), h, needed))?;
    let mutex = object_mutex(id);
    sched::lock(mutex)?;
    // While this call waited, the capability may have been revoked.
    let taken = with(|o| {
        o.caps.lookup(task(slot), h, needed)?;
        let s = o.slots.get_mut(id.0 as usize).ok_or(Errno::BadHandle)?;
        match core::mem::replace(s, Slot::InUse) {
            Slot::Ready(r) => Ok(r),
            other => {
                *s = other;
                Err(Errno::BadHandle)
            }
        }
    });
    let result = taken.and_then(|mut r| {
        let result = f(id, &mut r);
        with(|o| o.slots[id.0 as usize] = Slot::Ready(r));
        result
    });
    let _ = sched::unlock(mutex);
    result
}

/// The engine configuration a create call asks for.
pub fn config_of(a: &ReservoirCreateArgs) -> Result<FixedEsnConfig, Errno> {
    let permille = ((u64::from(a.density_q16) * 1000) >> 16).max(1) as u32;
    let q16 = |v: u32| i32::try_from(v).map_err(|_| Errno::InvalidArgument);
    Ok(FixedEsnConfig {
        units: a.units as usize,
        inputs: a.inputs as usize,
        connectivity_permille: permille,
        spectral_radius_q16: q16(a.spectral_radius_q16)?,
        input_scaling_q16: q16(a.input_scaling_q16)?,
        bias_scaling_q16: BIAS_SCALING_Q16,
        leak_rate_q16: q16(a.leak_rate_q16)?,
        seed: a.seed,
    })
}

pub fn create(slot: usize, args: u64) -> Result<u64, Errno> {
    let a = ReservoirCreateArgs::from_bytes(&read_args(slot, args)?)?;
    create_from(slot, &a)
}

fn create_from(slot: usize, a: &ReservoirCreateArgs) -> Result<u64, Errno> {
    if a.topology != Topology::SparseRandom {
        // Only the sparse Q1.15 reservoir exists in the kernel so far.
        return Err(Errno::InvalidArgument);
    }
    let cfg = config_of(a)?;
    let l = FixedEsnLayout::of(&cfg);
    let bytes = weight_bytes(l.units, l.inputs, l.nnz);
    if bytes as u64 + 4096 > WEIGHTS_PER_OBJECT || 2 * l.units > 4096 {
        return Err(Errno::NoMemory);
    }
    // Room in both tables before anything is allocated or generated: a full table refuses at
    // once, however often it is asked.
    let free = with(|o| {
        if o.caps.live(task(slot)) >= CAPS_PER_TASK {
            return Err(Errno::NoMemory);
        }
        let free = o
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Free))
            .ok_or(Errno::NoMemory)?;
        o.slots[free] = Slot::Reserved;
        Ok(free)
    })?;
    let release = |r: Option<Reservoir>| {
        with(|o| {
            o.slots[free] = Slot::Free;
            drop(r);
        })
    };
    // The allocation itself cannot fail the kernel: a full heap is refused, not a panic.
    let Some(mut r) = with(|_| allocate(cfg, a, l.nnz, bytes)) else {
        release(None);
        return Err(Errno::NoMemory);
    };
    let generated = preemptible(|| {
        r.weights.resize(bytes.div_ceil(4096), Page([0; 4096]));
        r.state.resize(1, Page([0; 4096]));
        r.scratch.resize(l.units, 0);
        r.saved.resize(l.units, 0);
        r.readout.resize(a.outputs as usize * l.units, 0);
        FixedEsn::new(cfg, buffers(&mut r)).is_ok()
    });
    if !generated {
        release(Some(r));
        return Err(Errno::InvalidArgument);
    }
    with(|o| {
        match o
            .caps
            .insert(task(slot), ObjectId(free as u32), Rights::ALL)
        {
            Ok(handle) => {
                o.slots[free] = Slot::Ready(r);
                Ok(handle.to_raw())
            }
            Err(e) => {
                o.slots[free] = Slot::Free;
                drop(r);
                Err(e)
            }
        }
    })
}

/// A reservoir with every array's capacity reserved (filled later), or `None` if the heap
/// cannot hold it.
fn allocate(
    cfg: FixedEsnConfig,
    a: &ReservoirCreateArgs,
    nnz: usize,
    bytes: usize,
) -> Option<Reservoir> {
    fn reserved<T>(n: usize) -> Option<Vec<T>> {
        let mut v = Vec::new();
        v.try_reserve_exact(n).ok()?;
        Some(v)
    }
    let units = cfg.units;
    Some(Reservoir {
        cfg,
        topology: a.topology,
        outputs: a.outputs as usize,
        nnz,
        weights: reserved(bytes.div_ceil(4096))?,
        state: reserved(1)?,
        scratch: reserved(units)?,
        saved: reserved(units)?,
        readout: reserved(a.outputs as usize * units)?,
        steps: 0,
        trajectory: [[0; TRAJECTORY_UNITS]; TRAJECTORY_STEPS],
        memory_capacity_q16: MEMORY_CAPACITY_UNKNOWN,
    })
}

fn weight_bytes(units: usize, inputs: usize, nnz: usize) -> usize {
    4 * (units + 1) + 2 * nnz + 2 * nnz + 2 * units * inputs + 2 * units
}

/// The weight arrays inside the pages: (row offsets, columns, values, input weights, bias).
type WeightArrays<'a> = (
    &'a mut [u32],
    &'a mut [u16],
    &'a mut [i16],
    &'a mut [i16],
    &'a mut [i16],
);

fn weight_arrays(
    weights: &mut [Page],
    units: usize,
    inputs: usize,
    nnz: usize,
) -> WeightArrays<'_> {
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(weights);
    let (ro, rest) = bytes.split_at_mut(4 * (units + 1));
    let (co, rest) = rest.split_at_mut(2 * nnz);
    let (va, rest) = rest.split_at_mut(2 * nnz);
    let (wi, rest) = rest.split_at_mut(2 * units * inputs);
    let bi = &mut rest[..2 * units];
    (
        bytemuck::cast_slice_mut(ro),
        bytemuck::cast_slice_mut(co),
        bytemuck::cast_slice_mut(va),
        bytemuck::cast_slice_mut(wi),
        bytemuck::cast_slice_mut(bi),
    )
}

fn state_of(r: &Reservoir) -> &[i16] {
    let bytes: &[u8] = bytemuck::cast_slice(&r.state);
    bytemuck::cast_slice(&bytes[..2 * r.cfg.units])
}

fn buffers(r: &mut Reservoir) -> FixedEsnBuffers<'_> {
    let (row_offsets, columns, values, w_in, bias) =
        weight_arrays(&mut r.weights, r.cfg.units, r.cfg.inputs, r.nnz);
    let state_bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut r.state);
    FixedEsnBuffers {
        row_offsets,
        columns,
        values,
        w_in,
        bias,
        state: bytemuck::cast_slice_mut(&mut state_bytes[..2 * r.cfg.units]),
        scratch: &mut r.scratch,
    }
}

/// The object `h` names, for the kernel's own calls between scheduler runs (no call can have it
/// out of the table then).
fn object(
    o: &mut Objects,
    slot: usize,
    h: CapHandle,
    needed: Rights,
) -> Result<&mut Reservoir, Errno> {
    let id = o.caps.lookup(task(slot), h, needed)?;
    match o.slots.get_mut(id.0 as usize) {
        Some(Slot::Ready(r)) => Ok(r),
        _ => Err(Errno::BadHandle),
    }
}

/// Reads `n` Q16.16 values from user memory into `out` (which has room for the widest call).
fn read_q16(slot: usize, ptr: u64, out: &mut [i32]) -> Result<(), Errno> {
    let mut bytes = [0u8; 4 * echos_abi::MAX_RESERVOIR_IO as usize];
    let bytes = bytes.get_mut(..out.len() * 4).ok_or(Errno::BadLength)?;
    copy_in(slot, ptr, bytes)?;
    for (v, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(())
}

/// One step: the engine's view rebuilt over the object's arrays, its state restored, the step,
/// the trajectory row and the readout (`output`, Q16.16 little-endian, `outputs` entries).
fn step_object(r: &mut Reservoir, input: &[i32], output: &mut [u8]) -> Result<(), Errno> {
    let mut saved = core::mem::take(&mut r.saved);
    saved.copy_from_slice(state_of(r));
    let (cfg, nnz) = (r.cfg, r.nnz);
    let result = (|| {
        let mut esn =
            FixedEsn::from_parts(cfg, nnz, buffers(r)).map_err(|_| Errno::InvalidArgument)?;
        esn.set_state(&saved).map_err(|_| Errno::InvalidArgument)?;
        esn.step(input).map_err(|_| Errno::DimensionMismatch)
    })();
    r.saved = saved;
    result?;
    let units = r.cfg.units;
    let row = (r.steps as usize) % TRAJECTORY_STEPS;
    let mut recent = [0i32; TRAJECTORY_UNITS];
    for (u, t) in recent.iter_mut().enumerate() {
        *t = state_of(r).get(u).copied().map_or(0, q15_to_q16);
    }
    r.trajectory[row] = recent;
    r.steps += 1;
    // Readout y = W_out · x, Q1.15 × Q1.15 summed in i64, returned in Q16.16.
    for (j, out) in output.chunks_exact_mut(4).take(r.outputs).enumerate() {
        let w = &r.readout[j * units..(j + 1) * units];
        let acc: i64 = w
            .iter()
            .zip(state_of(r))
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        let y = (acc >> 14).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        out.copy_from_slice(&y.to_le_bytes());
    }
    Ok(())
}

pub fn step(slot: usize, args: u64) -> Result<u64, Errno> {
    let a = ReservoirStepArgs::from_bytes(&read_args(slot, args)?)?;
    let mut input = [0i32; echos_abi::MAX_RESERVOIR_IO as usize];
    let mut output = [0u8; 4 * echos_abi::MAX_RESERVOIR_IO as usize];
    let outputs = with_object(slot, a.handle, Rights::STEP, |_, r| {
        if a.input_len as usize != r.cfg.inputs || a.output_len as usize != r.outputs {
            return Err(Errno::DimensionMismatch);
        }
        let input = &mut input[..r.cfg.inputs];
        read_q16(slot, a.input_ptr, input)?;
        if r.outputs > 0 {
            // A refused output buffer must refuse the whole call, before the state moves.
            check_writable(slot, a.output_ptr, 4 * r.outputs as u64)?;
        }
        preemptible(|| step_object(r, input, &mut output))?;
        Ok(r.outputs)
    })?;
    if outputs > 0 {
        copy_out(slot, a.output_ptr, &output[..outputs * 4])?;
    }
    Ok(0)
}

pub fn read_state(slot: usize, args: u64) -> Result<u64, Errno> {
    let a = ReservoirReadStateArgs::from_bytes(&read_args(slot, args)?)?;
    with_object(slot, a.handle, Rights::READ, |_, r| {
        if a.buf_len as usize != r.cfg.units {
            return Err(Errno::DimensionMismatch);
        }
        // The whole buffer first: a refused call writes nothing.
        check_writable(slot, a.buf_ptr, 4 * r.cfg.units as u64)?;
        // Through a bounded chunk: no allocation in the call; up to 4 KiB, so preemptible.
        preemptible(|| {
            let mut chunk = [0u8; 256];
            for (i, part) in state_of(r).chunks(64).enumerate() {
                for (j, &x) in part.iter().enumerate() {
                    chunk[4 * j..4 * j + 4].copy_from_slice(&q15_to_q16(x).to_le_bytes());
                }
                copy_out(slot, a.buf_ptr + (i * 256) as u64, &chunk[..part.len() * 4])?;
            }
            Ok(r.cfg.units as u64)
        })
    })
}

pub fn modify_weights(slot: usize, args: u64) -> Result<u64, Errno> {
    let a = ReservoirModifyWeightsArgs::from_bytes(&read_args(slot, args)?)?;
    with_object(slot, a.handle, Rights::WRITE, |_, r| {
        let (units, inputs, nnz) = (r.cfg.units, r.cfg.inputs, r.nnz);
        let (_, _, values, w_in, _) = weight_arrays(&mut r.weights, units, inputs, nnz);
        let target: &mut [i16] = match a.matrix {
            WeightMatrix::Input => w_in,
            WeightMatrix::Recurrent => values,
            WeightMatrix::Readout => &mut r.readout,
        };
        let (offset, count) = (a.offset as usize, a.count as usize);
        let end = offset.checked_add(count).ok_or(Errno::DimensionMismatch)?;
        if count == 0 || end > target.len() {
            return Err(Errno::DimensionMismatch);
        }
        // The whole range first: whether a call is refused for its pointer must not depend on
        // the values it would have read first.
        check_readable(slot, a.data_ptr, 4 * count as u64)?;
        // Validate everything before changing anything: a refused call leaves no trace.
        preemptible(|| {
            let mut buf = [0u8; 256];
            for pass in 0..2 {
                for start in (0..count).step_by(64) {
                    let n = (count - start).min(64);
                    copy_in(slot, a.data_ptr + 4 * start as u64, &mut buf[..4 * n])?;
                    for (k, b) in buf[..4 * n].chunks_exact(4).enumerate() {
                        let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        // Q16.16 in [-1, 1) → Q1.15.
                        if !(-65536..65536).contains(&v) {
                            return Err(Errno::InvalidArgument);
                        }
                        if pass == 1 {
                            target[offset + start + k] = (v >> 1) as i16;
                        }
                    }
                }
            }
            Ok(count as u64)
        })
    })
}

pub fn introspect(slot: usize, args: u64) -> Result<u64, Errno> {
    let a = IntrospectArgs::from_bytes(&read_args(slot, args)?)?;
    let bytes = with_object(slot, a.handle, Rights::READ, |id, r| {
        let state_addr = state_vaddr(id.0, r.weights.len());
        let state_addr = if umem::is_readable(slot, state_addr, 4096) {
            state_addr
        } else {
            0
        };
        let mut state = [0i32; DEBUG_STATE_UNITS];
        for (s, &x) in state.iter_mut().zip(state_of(r)) {
            *s = q15_to_q16(x);
        }
        let kept = (r.steps as usize).min(TRAJECTORY_STEPS);
        let mut trajectory = [0i32; TRAJECTORY_STEPS * TRAJECTORY_UNITS];
        for t in 0..kept {
            let row = (r.steps as usize - kept + t) % TRAJECTORY_STEPS;
            trajectory[t * TRAJECTORY_UNITS..(t + 1) * TRAJECTORY_UNITS]
                .copy_from_slice(&r.trajectory[row]);
        }
        let info = ReservoirDebugInfo {
            context: EchoContext {
                step: r.steps,
                period: 0,
                units: r.cfg.units as u32,
                topology: r.topology,
                spectral_radius_q16: r.cfg.spectral_radius_q16 as u32,
                leak_rate_q16: r.cfg.leak_rate_q16 as u32,
                state_addr,
            },
            memory_capacity_q16: r.memory_capacity_q16,
            state_len: r.cfg.units.min(DEBUG_STATE_UNITS) as u32,
            trajectory_len: kept as u32,
            _pad: 0,
            deadline_misses: 0,
            overruns: 0,
            state,
            trajectory,
        };
        Ok(info.to_bytes())
    })?;
    copy_out(slot, a.out_ptr, &bytes)?;
    Ok(ReservoirDebugInfo::SIZE as u64)
}

fn state_vaddr(object: u32, weight_pages: usize) -> u64 {
    WEIGHTS_BASE + u64::from(object) * WEIGHTS_PER_OBJECT + 4096 * weight_pages as u64
}

/// Creates a reservoir for the task in `slot` from the kernel (a pipeline's shared object,
/// set up before the tasks run); returns its handle with every right.
pub fn create_for(slot: usize, a: &ReservoirCreateArgs) -> Result<CapHandle, Errno> {
    let raw = create_from(slot, a)?;
    CapHandle::from_raw(raw)
}

/// Gives the task in `to` a capability to the object `handle` names in `from`'s table, with at
/// most `rights` (a pipeline's later stage gets read and map).
pub fn grant(
    from: usize,
    handle: CapHandle,
    to: usize,
    rights: Rights,
) -> Result<CapHandle, Errno> {
    with(|o| o.caps.grant(task(from), handle, task(to), rights))
}

/// Maps the object's weight pages, and after them its state page, read-only into the caller
/// (zero-copy: later changes show through); needs the map right. Returns the weights' address;
/// introspection gives the state page's as `state_addr`.
pub fn map_weights(slot: usize, handle: CapHandle) -> Result<u64, Errno> {
    with_object(slot, handle, Rights::MAP, |id, r| {
        let mut frames = [0u64; (WEIGHTS_PER_OBJECT / 4096) as usize];
        let n = r.weights.len() + 1;
        for (f, page) in frames.iter_mut().zip(r.weights.iter().chain(&r.state)) {
            // The kernel heap is identity-mapped: a page's address is its frame.
            *f = page as *const Page as u64;
        }
        let vaddr = WEIGHTS_BASE + u64::from(id.0) * WEIGHTS_PER_OBJECT;
        umem::map_read_only(slot, vaddr, &frames[..n])
    })
}

pub fn derive(slot: usize, handle: CapHandle, rights: Rights) -> Result<u64, Errno> {
    with(|o| {
        o.caps
            .grant(task(slot), handle, task(slot), rights)
            .map(|h| h.to_raw())
    })
}

pub fn revoke(slot: usize, handle: CapHandle) -> Result<u64, Errno> {
    with(|o| o.caps.revoke(task(slot), handle).map(|n| n as u64))
}

/// The step count and state of the object in table slot `index` (for the tests).
pub fn object_state(index: usize) -> Option<(u64, Vec<i16>)> {
    with(|o| match o.slots.get(index) {
        Some(Slot::Ready(r)) => Some((r.steps, state_of(r).to_vec())),
        _ => None,
    })
}

/// Sets the readout of the object `handle` names in `slot`'s table from the kernel (the demo's
/// host-trained readout), Q1.15, one output row after another, and the memory capacity the host
/// measured for the same reservoir (Q16.16), which introspection then reports.
pub fn set_trained(
    slot: usize,
    handle: CapHandle,
    readout: &[i16],
    memory_capacity_q16: u32,
) -> Result<(), Errno> {
    with(|o| {
        let r = object(o, slot, handle, Rights::WRITE)?;
        if readout.len() != r.readout.len() {
            return Err(Errno::DimensionMismatch);
        }
        r.readout.copy_from_slice(readout);
        r.memory_capacity_q16 = memory_capacity_q16;
        Ok(())
    })
}
