//! The hostile ring-3 task (issue 16): a seeded stream of random syscalls — numbers valid and
//! invalid; arguments drawn from classes (zero, small, huge, pointers into the kernel's map and
//! half, non-canonical, unmapped, misaligned, straddling a region's edge or the top of user
//! space, wrapping, overlapping, huge lengths, valid buffers); capability handles live, narrowed,
//! forged, stale, revoked and made up; now and then a stack pointer into the kernel — each checked
//! against a model of what the kernel must answer (the ABI's own decoding, then the kernel's
//! order of checks, its capability table and mutexes, this task's memory map). It also checks
//! that every register the ABI preserves came back intact.
//!
//! It keeps a tally of the results (success, then each error code, then unknown codes); the
//! kernel keeps its own tally of what it returned to this task, and the two must agree.
//!
//! Argument: bits 0..32 the number of calls, bits 32..64 the seed. Exit code, when every answer
//! fitted the model: bits 0..32 the low half of the tally's FNV-1a digest, bits 32..62 how many
//! answers the model predicted exactly (the rest it could only bound). Otherwise
//! `-(1 + mismatches)`, with the first few mismatches logged.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU8, Ordering};

use echos_user::abi::{
    CapHandle, Errno, IntrospectArgs, Request, ReservoirCreateArgs, ReservoirDebugInfo,
    ReservoirModifyWeightsArgs, ReservoirReadStateArgs, ReservoirStepArgs, Rights, Syscall,
    Topology, WeightMatrix, MAX_INPUT_SCALING_Q16, MAX_LOG_LEN, MAX_RESERVOIR_IO,
    MAX_RESERVOIR_UNITS, MAX_SPECTRAL_RADIUS_Q16, Q16_ONE, USER_SPACE_END,
};
use echos_user::rng::SplitMix64;
use echos_user::{logln, probe_syscall};

echos_user::entry!(main);

// The kernel's user layout and table sizes (kernel/src/config.rs), which the model needs to know
// what is mapped and when a table is full.
const IMAGE_BASE: u64 = 0x80_0000_0000;
/// Programs are far smaller: past this the image area is surely unmapped.
const IMAGE_MAX: u64 = 64 << 20;
const STACK_TOP: u64 = 0x80_4000_0000;
const STACK_BOTTOM: u64 = STACK_TOP - 16 * 1024;
const WEIGHTS_BASE: u64 = 0x80_8000_0000;
const WEIGHTS_WINDOW: u64 = 2 << 20;
const WEIGHTS_PER_OBJECT: u64 = 256 * 1024;
const CAPS: usize = 16;
const OBJECTS: usize = 8;
/// Kernel mutexes ring 3 may name.
const MUTEXES: u64 = 4;
const MIN_USER_ADDR: u64 = 0x1000;
const PAGE: u64 = 4096;

/// Scratch memory every valid pointer points into; the kernel writes results here.
const ARENA_LEN: usize = 16 * 1024;
#[repr(C, align(4096))]
struct Arena([AtomicU8; ARENA_LEN]);
static ARENA: Arena = Arena([const { AtomicU8::new(0) }; ARENA_LEN]);

/// Read-only bytes of a known value: 0xFF is never UTF-8, and as argument structs it decodes to
/// out-of-range fields.
static READ_ONLY: [u8; 8192] = [0xFF; 8192];
/// The one text a log call may succeed with (rarely): its line break must not start a console
/// line of its own, or a task could forge the kernel's test results.
static TEXT: &[u8] =
    b"hostile: a log line with a forged one after it\ntest hostile_forged_line ... ok";

fn arena() -> u64 {
    ARENA.0.as_ptr() as u64
}

fn put(ptr: u64, bytes: &[u8]) {
    let off = (ptr - arena()) as usize;
    for (cell, &b) in ARENA.0[off..off + bytes.len()].iter().zip(bytes) {
        cell.store(b, Ordering::Relaxed);
    }
}

fn fill(ptr: u64, len: u64, byte: u8) {
    let off = (ptr - arena()) as usize;
    for cell in &ARENA.0[off..off + len as usize] {
        cell.store(byte, Ordering::Relaxed);
    }
}

fn get(ptr: u64, out: &mut [u8]) {
    let off = (ptr - arena()) as usize;
    let n = out.len();
    for (b, cell) in out.iter_mut().zip(&ARENA.0[off..off + n]) {
        *b = cell.load(Ordering::Relaxed);
    }
}

/// What a user range is, as far as this task knows its own map.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mem {
    /// The kernel must refuse it with this error.
    Bad(Errno),
    /// Inside the arena: readable and writable, content known.
    Rw,
    /// Readable, not writable.
    Ro(Content),
    /// Possibly mapped (inside the image or the weights window, off the known parts).
    Unknown,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Content {
    /// All 0xFF (`READ_ONLY`).
    Ff,
    /// Bytes of `TEXT` from this offset.
    Text(usize),
    Unknown,
}

/// How many of a call's arguments are wrong: none (so the valid paths run too), one, or each
/// at even odds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hostility {
    Benign,
    One,
    Chaos,
}

struct Model {
    rng: SplitMix64,
    caps: CapModel,
    objects: [Option<Object>; OBJECTS],
    created: usize,
    mutex_held: [bool; MUTEXES as usize],
    /// Handles that were live once and are revoked now (stale copies), a ring.
    stale: [u64; 8],
    stale_len: usize,
    last_ptr: u64,
    hostility: Hostility,
    /// Arguments drawn so far in this call, and which one is wrong under `Hostility::One`.
    draws: u64,
    victim: u64,
    calls: u64,
    exact: u64,
    mismatches: u64,
    /// Successes, then error codes -1..=-15, then unknown codes.
    tally: [u64; 17],
}

#[derive(Clone, Copy)]
struct Object {
    units: u32,
    inputs: u32,
    outputs: u32,
    nnz: u32,
    mapped: Option<u64>,
}

#[derive(Clone, Copy)]
struct Cap {
    object: usize,
    rights: Rights,
    /// Slot and generation it was derived from.
    parent: Option<(usize, u32)>,
}

/// This task's capability table as the kernel keeps it (echos_kpolicy::caps for one task).
struct CapModel {
    generation: [u32; CAPS],
    slots: [Option<Cap>; CAPS],
}

impl CapModel {
    fn lookup(&self, h: CapHandle, needed: Rights) -> Result<usize, Errno> {
        let i = h.index as usize;
        if i >= CAPS {
            return Err(Errno::BadHandle);
        }
        if h.generation < self.generation[i] {
            return Err(Errno::Revoked);
        }
        if h.generation > self.generation[i] {
            return Err(Errno::BadHandle);
        }
        let c = self.slots[i].ok_or(Errno::BadHandle)?;
        if !c.rights.contains(h.rights) || !h.rights.contains(needed) {
            return Err(Errno::PermissionDenied);
        }
        Ok(c.object)
    }

    /// The handle the kernel will hand out for a new capability, if the table has room.
    fn next(&self, rights: Rights) -> Option<CapHandle> {
        (0..CAPS)
            .find(|&i| self.slots[i].is_none() && self.generation[i] != u32::MAX)
            .map(|i| CapHandle::new(i as u16, self.generation[i], rights))
    }

    fn insert(&mut self, h: CapHandle, object: usize, parent: Option<(usize, u32)>) {
        self.slots[h.index as usize] = Some(Cap {
            object,
            rights: h.rights,
            parent,
        });
    }

    fn clear(&mut self, i: usize) {
        self.slots[i] = None;
        self.generation[i] = self.generation[i].saturating_add(1);
    }

    /// Revokes slot `i` and, transitively, everything derived from it; returns the count.
    fn revoke(&mut self, i: usize) -> u64 {
        self.clear(i);
        let mut n = 1;
        loop {
            let orphan = (0..CAPS).find(|&j| {
                self.slots[j]
                    .and_then(|c| c.parent)
                    .is_some_and(|(p, g)| self.generation[p] != g)
            });
            match orphan {
                Some(j) => {
                    self.clear(j);
                    n += 1;
                }
                None => return n,
            }
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, Cap)> + '_ {
        (0..CAPS).filter_map(|i| self.slots[i].map(|c| (i, c)))
    }
}

/// What the kernel must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Exactly(i64),
    /// Only bounded: some success or a known error code.
    Any,
}

fn err(e: Errno) -> Expect {
    Expect::Exactly(e.code())
}

fn ok(v: u64) -> Expect {
    Expect::Exactly(v as i64)
}

/// The FNV-1a digest (the engine's `integer::Fnv1a`) of the tally's little-endian words.
fn digest(tally: &[u64; 17]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in tally {
        for b in w.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn isqrt_u64(v: u64) -> u64 {
    let (mut rem, mut root, mut bit) = (v, 0u64, 1u64 << 62);
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

impl Model {
    fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
            caps: CapModel {
                generation: [0; CAPS],
                slots: [None; CAPS],
            },
            objects: [None; OBJECTS],
            created: 0,
            mutex_held: [false; MUTEXES as usize],
            stale: [0; 8],
            stale_len: 0,
            last_ptr: 0,
            hostility: Hostility::Benign,
            draws: 0,
            victim: 0,
            calls: 0,
            exact: 0,
            mismatches: 0,
            tally: [0; 17],
        }
    }

    fn pick(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    /// Whether the argument drawn now is to be a wrong one.
    fn hostile_here(&mut self) -> bool {
        let k = self.draws;
        self.draws += 1;
        match self.hostility {
            Hostility::Benign => false,
            Hostility::One => k == self.victim,
            Hostility::Chaos => self.rng.chance(1, 2),
        }
    }

    /// What `[ptr, ptr + len)` is (the kernel's check: zero or wrapping length, outside
    /// user space, unmapped or without the permission).
    fn classify(&self, ptr: u64, len: u64) -> Mem {
        if len == 0 {
            return Mem::Bad(Errno::BadLength);
        }
        let Some(end) = ptr.checked_add(len) else {
            return Mem::Bad(Errno::BadLength);
        };
        let inside = |lo: u64, hi: u64| ptr >= lo && end <= hi;
        if inside(arena(), arena() + ARENA_LEN as u64) {
            return Mem::Rw;
        }
        let ro = READ_ONLY.as_ptr() as u64;
        if inside(ro, ro + READ_ONLY.len() as u64) {
            return Mem::Ro(Content::Ff);
        }
        let text = TEXT.as_ptr() as u64;
        if inside(text, text + TEXT.len() as u64) {
            return Mem::Ro(Content::Text((ptr - text) as usize));
        }
        if inside(IMAGE_BASE, IMAGE_BASE + PAGE) {
            return Mem::Ro(Content::Unknown);
        }
        for o in self.objects.iter().flatten() {
            // A mapping holds at least one weight page and the state page.
            if let Some(m) = o.mapped {
                if inside(m, m + 2 * PAGE) {
                    return Mem::Ro(Content::Unknown);
                }
            }
        }
        if ptr < MIN_USER_ADDR || end > USER_SPACE_END {
            return Mem::Bad(Errno::BadPointer);
        }
        let maybe_mapped = |a: u64| {
            (IMAGE_BASE..IMAGE_BASE + IMAGE_MAX).contains(&a)
                || (STACK_BOTTOM..STACK_TOP).contains(&a)
                || (WEIGHTS_BASE..WEIGHTS_BASE + WEIGHTS_WINDOW).contains(&a)
        };
        if !maybe_mapped(ptr) || !maybe_mapped(end - 1) {
            return Mem::Bad(Errno::BadPointer);
        }
        Mem::Unknown
    }

    /// A pointer for an access of `len` bytes, from one of the classes. Valid ones point into
    /// the arena (never elsewhere writable: the kernel would rightly write there).
    fn pointer(&mut self, len: u64) -> u64 {
        let len = len.max(1);
        if !self.hostile_here() {
            let align = if self.rng.chance(1, 4) { 1 } else { 8 };
            let p = self.arena_ptr(len, align);
            self.last_ptr = p;
            return p;
        }
        let p = match self.pick(17) {
            0 => 0,
            1 => self.rng.between(1, MIN_USER_ADDR - 1),
            // The kernel's identity map: mapped, but supervisor-only.
            2 => self.rng.between(MIN_USER_ADDR, 0xffff_ffff),
            // The kernel half.
            3 => 0xffff_8000_0000_0000 | self.rng.next_u64(),
            // Non-canonical.
            4 => self.rng.between(USER_SPACE_END, 0xffff_7fff_ffff_ffff),
            // Straddles the top of user space.
            5 => USER_SPACE_END - self.rng.between(1, len),
            // Unmapped user memory: below the image, or above the weights window.
            6 => {
                if self.rng.chance(1, 2) {
                    self.rng.between(0x1_0000_0000, IMAGE_BASE - PAGE)
                } else {
                    self.rng
                        .between(WEIGHTS_BASE + WEIGHTS_WINDOW, USER_SPACE_END - 2 * PAGE)
                }
            }
            // Starts just below a mapped region (unmapped first byte), or ends just past the
            // stack's top (unmapped last byte).
            7 => match self.pick(3) {
                0 => IMAGE_BASE - self.rng.between(1, len.min(PAGE)),
                1 => STACK_BOTTOM - self.rng.between(1, len.min(PAGE)),
                _ if len == 1 => STACK_TOP,
                _ => STACK_TOP - self.rng.between(1, (len - 1).min(PAGE)),
            },
            // Wraps around the end of the address space.
            8 => u64::MAX - self.rng.below(len),
            9..=11 => self.arena_ptr(len, 8),
            12 => self.arena_ptr(len, 1),
            13 => self.read_only_ptr(len),
            // The previous pointer again: overlapping buffers (only where that stays valid).
            14 if self.classify(self.last_ptr, len) == Mem::Rw => self.last_ptr,
            14 => self.arena_ptr(len, 8),
            15 => self.rng.next_u64(),
            _ => self.rng.between(MIN_USER_ADDR, USER_SPACE_END - 1),
        };
        // A random user address may land on this task's own writable memory (image, stack),
        // where the kernel would rightly write: such ranges become an unmapped one.
        let p = if matches!(self.classify(p, len), Mem::Unknown)
            && !(WEIGHTS_BASE..WEIGHTS_BASE + WEIGHTS_WINDOW).contains(&p)
        {
            IMAGE_BASE - 1
        } else {
            p
        };
        self.last_ptr = p;
        p
    }

    fn arena_ptr(&mut self, len: u64, align: u64) -> u64 {
        if len > ARENA_LEN as u64 {
            // No valid place for it: an unmapped one instead.
            return IMAGE_BASE - PAGE;
        }
        let room = ARENA_LEN as u64 - len;
        let mut off = self.rng.below(room + 1);
        if align > 1 {
            off &= !(align - 1);
        } else if off.is_multiple_of(2) {
            off = if off < room {
                off + 1
            } else {
                off.saturating_sub(1)
            };
        }
        arena() + off
    }

    fn read_only_ptr(&mut self, len: u64) -> u64 {
        let mapped = self.objects.iter().flatten().find_map(|o| o.mapped);
        match self.pick(4) {
            0 if len <= PAGE => IMAGE_BASE + self.rng.below(PAGE - len + 1),
            1 if len <= 2 * PAGE && mapped.is_some() => {
                mapped.unwrap_or(IMAGE_BASE) + self.rng.below(2 * PAGE - len + 1)
            }
            _ if len <= READ_ONLY.len() as u64 => {
                READ_ONLY.as_ptr() as u64 + self.rng.below(READ_ONLY.len() as u64 - len + 1)
            }
            _ => USER_SPACE_END - 1,
        }
    }

    /// A capability handle: live ones (as issued, narrowed, with forged rights), stale ones,
    /// made-up ones, reserved bits.
    fn handle(&mut self) -> u64 {
        let live = self.caps.live().count() as u64;
        let chosen = if live > 0 {
            let k = self.pick(live) as usize;
            self.caps.live().nth(k)
        } else {
            None
        };
        let issued =
            chosen.map(|(i, c)| CapHandle::new(i as u16, self.caps.generation[i], c.rights));
        if let (false, Some(h)) = (self.hostile_here(), issued) {
            return h.to_raw();
        }
        match (self.pick(20), issued) {
            (0..=6, Some(h)) => h.to_raw(),
            (7, Some(h)) => {
                let r = Rights::from_bits(u64::from(h.rights.bits()) & self.rng.below(16))
                    .unwrap_or(Rights::NONE);
                CapHandle::new(h.index, h.generation, r).to_raw()
            }
            (8, Some(h)) => {
                let extra = Rights::from_bits(1 << self.pick(4)).unwrap_or(Rights::NONE);
                CapHandle::new(h.index, h.generation, h.rights | extra).to_raw()
            }
            (9 | 10, _) if self.stale_len > 0 => {
                let n = self.stale_len.min(self.stale.len()) as u64;
                self.stale[self.pick(n) as usize]
            }
            (11, Some(h)) => {
                let g = h.generation.wrapping_add(1 + self.pick(3) as u32);
                CapHandle::new(h.index, g, h.rights).to_raw()
            }
            (12, _) => {
                let i = self.pick(CAPS as u64) as usize;
                let g = self.caps.generation[i].saturating_add(self.pick(2) as u32);
                let g = g.saturating_sub(self.pick(2) as u32);
                CapHandle::new(
                    i as u16,
                    g,
                    Rights::from_bits(self.pick(16)).unwrap_or(Rights::ALL),
                )
                .to_raw()
            }
            (13, _) => {
                let i = self.rng.between(CAPS as u64, 0xffff) as u16;
                CapHandle::new(i, self.pick(4) as u32, Rights::ALL).to_raw()
            }
            (14, _) => self.rng.next_u64() & ((1 << 52) - 1) | 1 << self.rng.between(52, 63),
            (15, _) => 0,
            (16 | 17, _) => self.rng.next_u64() & ((1 << 52) - 1),
            _ => self.rng.next_u64(),
        }
    }

    /// A live object and a handle to it with `needed` rights, if there is one.
    fn handle_for(&mut self, needed: Rights) -> Option<(u64, Object)> {
        let n = self
            .caps
            .live()
            .filter(|(_, c)| c.rights.contains(needed))
            .count() as u64;
        if n == 0 {
            return None;
        }
        let k = self.pick(n) as usize;
        let (i, c) = self
            .caps
            .live()
            .filter(|(_, c)| c.rights.contains(needed))
            .nth(k)?;
        let o = self.objects[c.object]?;
        Some((
            CapHandle::new(i as u16, self.caps.generation[i], c.rights).to_raw(),
            o,
        ))
    }

    /// A 32-bit field: the right value most of the time, else zero, one off, the limit, past
    /// the limit, all ones or random.
    fn field(&mut self, right: u32, limit: u32) -> u32 {
        if !self.hostile_here() {
            return right;
        }
        match self.pick(8) {
            0 => 0,
            1 => right.wrapping_add(1),
            2 => right.wrapping_sub(1),
            3 => limit,
            4 => limit.wrapping_add(1),
            5 => u32::MAX,
            6 => self.rng.next_u64() as u32,
            _ => right,
        }
    }

    /// Where an argument struct goes, and what the kernel will read there.
    fn struct_at<const N: usize>(&mut self, bytes: [u8; N]) -> (u64, Result<[u8; N], Expect>) {
        let p = self.pointer(N as u64);
        let seen = match self.classify(p, N as u64) {
            Mem::Bad(e) => Err(err(e)),
            Mem::Rw => {
                put(p, &bytes);
                Ok(bytes)
            }
            Mem::Ro(Content::Ff) => Ok([0xFF; N]),
            Mem::Ro(Content::Text(off)) => {
                let mut b = [0u8; N];
                b.copy_from_slice(&TEXT[off..off + N]);
                Ok(b)
            }
            Mem::Ro(Content::Unknown) | Mem::Unknown => Err(Expect::Any),
        };
        (p, seen)
    }

    /// The kernel reads `len` bytes at `ptr`: `Err` with the refusal, or the access is fine.
    fn readable(&self, ptr: u64, len: u64) -> Result<Option<Content>, Expect> {
        match self.classify(ptr, len) {
            Mem::Bad(e) => Err(err(e)),
            Mem::Rw => Ok(None),
            Mem::Ro(c) => Ok(Some(c)),
            Mem::Unknown => Err(Expect::Any),
        }
    }

    fn writable(&self, ptr: u64, len: u64) -> Result<(), Expect> {
        match self.classify(ptr, len) {
            Mem::Bad(e) => Err(err(e)),
            Mem::Rw => Ok(()),
            Mem::Ro(_) => Err(err(Errno::BadPointer)),
            Mem::Unknown => Err(Expect::Any),
        }
    }

    /// One random call: registers, what the kernel must answer, and what to record if it
    /// answers with success.
    fn call(&mut self) -> (u64, [u64; 6], Expect, Effect) {
        self.hostility = match self.pick(10) {
            0..=3 => Hostility::Benign,
            4..=6 => Hostility::One,
            _ => Hostility::Chaos,
        };
        self.draws = 0;
        self.victim = self.pick(6);
        let mut a = [0u64; 6];
        for r in a.iter_mut() {
            *r = match self.pick(4) {
                0 => 0,
                1 => self.pick(64),
                _ => self.rng.next_u64(),
            };
        }
        let number = match self.pick(40) {
            0 => self.rng.between(Syscall::ALL.len() as u64, 255),
            1 => (1 << 32) | self.rng.between(1, Syscall::ALL.len() as u64 - 1),
            2 => self.rng.next_u64() | 1 << 63,
            3 => u64::MAX,
            // Never 0: `exit` would end the run.
            _ => {
                const WEIGHTED: [Syscall; 20] = [
                    Syscall::Yield,
                    Syscall::SleepUntilNextPeriod,
                    Syscall::LogWrite,
                    Syscall::LogWrite,
                    Syscall::MutexLock,
                    Syscall::MutexUnlock,
                    Syscall::ReservoirCreate,
                    Syscall::ReservoirCreate,
                    Syscall::ReservoirStep,
                    Syscall::ReservoirStep,
                    Syscall::ReservoirStep,
                    Syscall::ReservoirReadState,
                    Syscall::ReservoirReadState,
                    Syscall::ReservoirModifyWeights,
                    Syscall::ReservoirModifyWeights,
                    Syscall::ReservoirIntrospect,
                    Syscall::ReservoirMapWeights,
                    Syscall::CapDerive,
                    Syscall::CapDerive,
                    Syscall::CapRevoke,
                ];
                WEIGHTED[self.pick(WEIGHTED.len() as u64) as usize] as u64
            }
        };
        let (expect, effect) = match Syscall::try_from(number) {
            Err(_) => (err(Errno::BadSyscall), Effect::None),
            Ok(call) => self.arguments(call, &mut a),
        };
        // The ABI's own decoding comes first; the model above must agree with it.
        let expect = match Request::decode(number, a) {
            Err(e) => err(e),
            Ok(_) => expect,
        };
        (number, a, expect, effect)
    }

    fn arguments(&mut self, call: Syscall, a: &mut [u64; 6]) -> (Expect, Effect) {
        match call {
            Syscall::Exit => (Expect::Any, Effect::None),
            Syscall::Yield => (ok(0), Effect::None),
            Syscall::SleepUntilNextPeriod => (err(Errno::NotPeriodic), Effect::None),
            Syscall::LogWrite => self.log_write(a),
            Syscall::MutexLock | Syscall::MutexUnlock => {
                let lock = call == Syscall::MutexLock;
                a[0] = match self.pick(8) {
                    0 => self.rng.between(MUTEXES, 0xffff),
                    1 => self.rng.between(0x1_0000, u64::MAX),
                    _ => self.pick(MUTEXES),
                };
                if a[0] >= MUTEXES {
                    return (err(Errno::InvalidArgument), Effect::None);
                }
                let held = self.mutex_held[a[0] as usize];
                match (lock, held) {
                    (true, false) | (false, true) => (ok(0), Effect::Mutex(a[0] as usize, lock)),
                    _ => (err(Errno::NotOwner), Effect::None),
                }
            }
            Syscall::ReservoirCreate => self.create(a),
            Syscall::ReservoirStep => self.step(a),
            Syscall::ReservoirReadState => self.read_state(a),
            Syscall::ReservoirModifyWeights => self.modify_weights(a),
            Syscall::ReservoirIntrospect => self.introspect(a),
            Syscall::ReservoirMapWeights => {
                a[0] = match self.handle_for(Rights::MAP) {
                    Some((h, _)) if !self.hostile_here() => h,
                    _ => self.handle(),
                };
                let Ok(h) = CapHandle::from_raw(a[0]) else {
                    return (err(Errno::BadHandle), Effect::None);
                };
                match self.caps.lookup(h, Rights::MAP) {
                    Err(e) => (err(e), Effect::None),
                    // Objects are never freed within a run, so the kernel's object slot is the
                    // order of creation.
                    Ok(o) => (
                        ok(WEIGHTS_BASE + o as u64 * WEIGHTS_PER_OBJECT),
                        Effect::Mapped(o),
                    ),
                }
            }
            Syscall::CapDerive => {
                a[0] = self.handle();
                let held = CapHandle::from_raw(a[0]).map_or(0, |h| u64::from(h.rights.bits()));
                a[1] = match self.pick(8) {
                    _ if !self.hostile_here() => held & self.pick(16),
                    0 => self.rng.between(16, u64::MAX),
                    _ => self.pick(16),
                };
                let Ok(h) = CapHandle::from_raw(a[0]) else {
                    return (err(Errno::BadHandle), Effect::None);
                };
                let Ok(rights) = Rights::from_bits(a[1]) else {
                    return (err(Errno::InvalidArgument), Effect::None);
                };
                match self.caps.lookup(h, Rights::NONE) {
                    Err(e) => (err(e), Effect::None),
                    Ok(_) if !h.rights.contains(rights) => {
                        (err(Errno::PermissionDenied), Effect::None)
                    }
                    Ok(o) => match self.caps.next(rights) {
                        None => (err(Errno::NoMemory), Effect::None),
                        Some(new) => (
                            ok(new.to_raw()),
                            Effect::Cap(new, o, Some((h.index as usize, h.generation))),
                        ),
                    },
                }
            }
            Syscall::CapRevoke => {
                a[0] = self.handle();
                let Ok(h) = CapHandle::from_raw(a[0]) else {
                    return (err(Errno::BadHandle), Effect::None);
                };
                // Objects are never freed, so revoking a root capability loses its object for
                // good: keep two alive, and revoke the others rarely.
                let is_root = |c: &Option<Cap>| c.is_some_and(|c| c.parent.is_none());
                let roots = self.caps.slots.iter().filter(|c| is_root(c)).count();
                let root = self.caps.slots.get(h.index as usize).is_some_and(is_root);
                if root && (roots <= 2 || self.rng.chance(7, 8)) {
                    // A generation from the future instead.
                    a[0] = CapHandle::new(h.index, h.generation.wrapping_add(1), h.rights).to_raw();
                }
                let Ok(h) = CapHandle::from_raw(a[0]) else {
                    return (err(Errno::BadHandle), Effect::None);
                };
                match self.caps.lookup(h, Rights::NONE) {
                    Err(e) => (err(e), Effect::None),
                    Ok(_) => {
                        let mut after = CapModel {
                            generation: self.caps.generation,
                            slots: self.caps.slots,
                        };
                        let n = after.revoke(h.index as usize);
                        (ok(n), Effect::Revoked(h))
                    }
                }
            }
        }
    }

    fn log_write(&mut self, a: &mut [u64; 6]) -> (Expect, Effect) {
        a[1] = match self.pick(10) {
            0 => 0,
            1 => MAX_LOG_LEN,
            2 => MAX_LOG_LEN + 1,
            3 => (1 << 32) | self.rng.between(1, 16),
            4 => u64::MAX,
            5 => self.rng.next_u64(),
            6 => self.rng.between(1, MAX_LOG_LEN),
            _ => self.rng.between(1, 16),
        };
        let len = a[1];
        if self.rng.chance(1, 1024) {
            a[0] = TEXT.as_ptr() as u64;
            a[1] = self.rng.between(1, TEXT.len() as u64);
            return (ok(a[1]), Effect::None);
        }
        a[0] = self.pointer(len);
        if len == 0 || len > MAX_LOG_LEN {
            return (err(Errno::BadLength), Effect::None);
        }
        match self.classify(a[0], len) {
            Mem::Bad(e) => (err(e), Effect::None),
            Mem::Rw => {
                // Never UTF-8: the console gets no noise from this.
                fill(a[0], len, 0xFF);
                (err(Errno::BadUtf8), Effect::None)
            }
            Mem::Ro(Content::Ff) => (err(Errno::BadUtf8), Effect::None),
            Mem::Ro(Content::Text(_)) => (ok(len), Effect::None),
            // Code or weights: keep their bytes off the console.
            Mem::Ro(Content::Unknown) | Mem::Unknown => {
                a[0] = READ_ONLY.as_ptr() as u64;
                (err(Errno::BadUtf8), Effect::None)
            }
        }
    }

    fn create(&mut self, a: &mut [u64; 6]) -> (Expect, Effect) {
        // Large ones (up to the kernel's limit: milliseconds a call) stress the other partition:
        // the second and sixth objects, and now and then an attempt when the table is full.
        let large = self.created % 4 == 1 || self.rng.chance(1, 8);
        let units = if large {
            self.rng.between(65, u64::from(MAX_RESERVOIR_UNITS)) as u32
        } else {
            self.rng.between(8, 64) as u32
        };
        let one = u64::from(Q16_ONE);
        let (inputs, outputs) = (self.rng.between(1, 4) as u32, self.rng.between(0, 3) as u32);
        let radius = self.rng.between(one / 2, one * 5 / 4) as u32;
        let leak = self.rng.between(1, one) as u32;
        let scaling = self.rng.between(1, one) as u32;
        let density = if large {
            // Sparse enough that most fit the kernel's 256 KiB of weights.
            self.rng.between(one / 100, one / 20) as u32
        } else {
            self.rng.between(one / 20, one / 4) as u32
        };
        let topology = if !(self.hostile_here() && self.rng.chance(1, 2)) {
            Topology::SparseRandom
        } else {
            [Topology::DenseRandom, Topology::Ring, Topology::IntegerEsn][self.pick(3) as usize]
        };
        let args = ReservoirCreateArgs {
            seed: self.rng.next_u64(),
            units: self.field(units, MAX_RESERVOIR_UNITS),
            inputs: self.field(inputs, MAX_RESERVOIR_IO),
            outputs: self.field(outputs, MAX_RESERVOIR_IO),
            topology,
            spectral_radius_q16: self.field(radius, MAX_SPECTRAL_RADIUS_Q16),
            leak_rate_q16: self.field(leak, Q16_ONE),
            input_scaling_q16: self.field(scaling, MAX_INPUT_SCALING_Q16),
            density_q16: self.field(density, Q16_ONE),
        };
        let mut bytes = args.to_bytes();
        if self.hostile_here() && self.rng.chance(1, 4) {
            // An unknown topology number.
            bytes[20..24].copy_from_slice(&(4 + self.pick(1000) as u32).to_le_bytes());
        }
        let (p, seen) = self.struct_at(bytes);
        a[0] = p;
        let bytes = match seen {
            Ok(b) => b,
            Err(e) => return (e, Effect::None),
        };
        let a = match ReservoirCreateArgs::from_bytes(&bytes) {
            Ok(a) => a,
            Err(e) => return (err(e), Effect::None),
        };
        if a.topology != Topology::SparseRandom {
            return (err(Errno::InvalidArgument), Effect::None);
        }
        // The engine's layout (echos_core::integer::FixedEsnLayout) and the kernel's limits.
        let units = u64::from(a.units);
        let permille = ((u64::from(a.density_q16) * 1000) >> 16).max(1);
        let per_row = ((units * permille + 500) / 1000).max(1);
        let nnz = units * per_row;
        let bytes = 4 * (units + 1) + 4 * nnz + 2 * units * u64::from(a.inputs) + 2 * units;
        if bytes + PAGE > WEIGHTS_PER_OBJECT {
            return (err(Errno::NoMemory), Effect::None);
        }
        if self.created == OBJECTS {
            return (err(Errno::NoMemory), Effect::None);
        }
        let Some(h) = self.caps.next(Rights::ALL) else {
            return (err(Errno::NoMemory), Effect::None);
        };
        // What the engine refuses beyond the contract's ranges: a weight scale ρ·√(3/k) above
        // 1.0 (input scaling above 1.0 is already refused by `from_bytes`).
        let sqrt_q16 = isqrt_u64((3u64 << 32) / per_row) as i64;
        let scale = (i64::from(a.spectral_radius_q16) * sqrt_q16 + (1 << 15)) >> 16;
        if scale > i64::from(Q16_ONE) {
            return (err(Errno::InvalidArgument), Effect::None);
        }
        let o = Object {
            units: a.units,
            inputs: a.inputs,
            outputs: a.outputs,
            nnz: nnz as u32,
            mapped: None,
        };
        (ok(h.to_raw()), Effect::Created(h, o))
    }

    fn step(&mut self, a: &mut [u64; 6]) -> (Expect, Effect) {
        let target = self.handle_for(Rights::STEP);
        let (handle, dims) = match target {
            Some((h, o)) if !self.hostile_here() => (h, (o.inputs, o.outputs)),
            _ => (
                self.handle(),
                (self.rng.between(1, 4) as u32, self.pick(4) as u32),
            ),
        };
        let input_len = self.field(dims.0, MAX_RESERVOIR_IO);
        let output_len = self.field(dims.1, MAX_RESERVOIR_IO);
        let input_ptr = self.pointer(4 * u64::from(input_len));
        let output_ptr = self.pointer(4 * u64::from(output_len));
        if self.classify(input_ptr, 4 * u64::from(input_len)) == Mem::Rw {
            for i in 0..u64::from(input_len) {
                let v = (self.rng.next_u64() as i32) >> self.pick(16);
                put(input_ptr + 4 * i, &v.to_le_bytes());
            }
        }
        let args = ReservoirStepArgs {
            handle: CapHandle::new(0, 0, Rights::NONE),
            input_ptr,
            output_ptr,
            input_len,
            output_len,
        };
        let mut bytes = args.to_bytes();
        bytes[0..8].copy_from_slice(&handle.to_le_bytes());
        let (p, seen) = self.struct_at(bytes);
        a[0] = p;
        let bytes = match seen {
            Ok(b) => b,
            Err(e) => return (e, Effect::None),
        };
        let s = match ReservoirStepArgs::from_bytes(&bytes) {
            Ok(s) => s,
            Err(e) => return (err(e), Effect::None),
        };
        let o = match self.caps.lookup(s.handle, Rights::STEP) {
            Ok(o) => o,
            Err(e) => return (err(e), Effect::None),
        };
        let Some(obj) = self.objects[o] else {
            return (Expect::Any, Effect::None);
        };
        if s.input_len != obj.inputs || s.output_len != obj.outputs {
            return (err(Errno::DimensionMismatch), Effect::None);
        }
        if let Err(e) = self.readable(s.input_ptr, 4 * u64::from(obj.inputs)) {
            return (e, Effect::None);
        }
        if obj.outputs > 0 {
            if let Err(e) = self.writable(s.output_ptr, 4 * u64::from(obj.outputs)) {
                return (e, Effect::None);
            }
        }
        (ok(0), Effect::None)
    }

    fn read_state(&mut self, a: &mut [u64; 6]) -> (Expect, Effect) {
        let (handle, units) = match self.handle_for(Rights::READ) {
            Some((h, o)) if !self.hostile_here() => (h, o.units),
            _ => (self.handle(), self.rng.between(1, 64) as u32),
        };
        let buf_len = self.field(units, MAX_RESERVOIR_UNITS);
        let buf_ptr = self.pointer(4 * u64::from(buf_len));
        let pad = if self.hostile_here() && self.rng.chance(1, 4) {
            1 + self.pick(7) as u32
        } else {
            0
        };
        let mut bytes = ReservoirReadStateArgs {
            handle: CapHandle::new(0, 0, Rights::NONE),
            buf_ptr,
            buf_len,
            _pad: 0,
        }
        .to_bytes();
        bytes[0..8].copy_from_slice(&handle.to_le_bytes());
        bytes[20..24].copy_from_slice(&pad.to_le_bytes());
        let (p, seen) = self.struct_at(bytes);
        a[0] = p;
        let bytes = match seen {
            Ok(b) => b,
            Err(e) => return (e, Effect::None),
        };
        let s = match ReservoirReadStateArgs::from_bytes(&bytes) {
            Ok(s) => s,
            Err(e) => return (err(e), Effect::None),
        };
        let o = match self.caps.lookup(s.handle, Rights::READ) {
            Ok(o) => o,
            Err(e) => return (err(e), Effect::None),
        };
        let Some(obj) = self.objects[o] else {
            return (Expect::Any, Effect::None);
        };
        if s.buf_len != obj.units {
            return (err(Errno::DimensionMismatch), Effect::None);
        }
        if let Err(e) = self.writable(s.buf_ptr, 4 * u64::from(obj.units)) {
            return (e, Effect::None);
        }
        (ok(u64::from(obj.units)), Effect::None)
    }

    fn modify_weights(&mut self, a: &mut [u64; 6]) -> (Expect, Effect) {
        let (handle, obj) = match self.handle_for(Rights::WRITE) {
            Some((h, o)) if !self.hostile_here() => (h, Some(o)),
            _ => (self.handle(), None),
        };
        let matrix = self.pick(3) as u32;
        let len = obj.map_or(64, |o| match matrix {
            0 => o.units * o.inputs,
            1 => o.nnz,
            _ => o.units * o.outputs,
        });
        let count = match self.pick(8) {
            _ if !self.hostile_here() => self.rng.between(1, u64::from(len.clamp(1, 256))) as u32,
            0 => 0,
            1 => len.saturating_add(1),
            2 => u32::MAX,
            3 => self.rng.next_u64() as u32,
            _ => self.rng.between(1, u64::from(len.clamp(1, 256))) as u32,
        };
        let offset = match self.pick(8) {
            _ if !self.hostile_here() => {
                self.rng.below(u64::from(len.saturating_sub(count)) + 1) as u32
            }
            0 => u32::MAX,
            1 => len,
            2 => self.rng.next_u64() as u32,
            _ => self.rng.below(u64::from(len.saturating_sub(count)) + 1) as u32,
        };
        let matrix_field = if self.hostile_here() && self.rng.chance(1, 4) {
            3 + self.pick(100) as u32
        } else {
            matrix
        };
        let data_len = 4 * u64::from(count);
        let data_ptr = self.pointer(data_len);
        let values_ok = !(self.hostile_here() && self.rng.chance(1, 2));
        if self.classify(data_ptr, data_len) == Mem::Rw {
            for i in 0..u64::from(count) {
                let v = if values_ok || i + 1 < u64::from(count) {
                    self.rng.between(0, 131_071) as i32 - 65_536
                } else {
                    65_536 + self.pick(1 << 20) as i32
                };
                put(data_ptr + 4 * i, &v.to_le_bytes());
            }
        }
        let pad = if self.hostile_here() && self.rng.chance(1, 4) {
            1
        } else {
            0
        };
        let mut bytes = ReservoirModifyWeightsArgs {
            handle: CapHandle::new(0, 0, Rights::NONE),
            data_ptr,
            matrix: WeightMatrix::Input,
            offset,
            count,
            _pad: 0,
        }
        .to_bytes();
        bytes[0..8].copy_from_slice(&handle.to_le_bytes());
        bytes[16..20].copy_from_slice(&matrix_field.to_le_bytes());
        bytes[28..32].copy_from_slice(&(pad as u32).to_le_bytes());
        let (p, seen) = self.struct_at(bytes);
        a[0] = p;
        let bytes = match seen {
            Ok(b) => b,
            Err(e) => return (e, Effect::None),
        };
        let s = match ReservoirModifyWeightsArgs::from_bytes(&bytes) {
            Ok(s) => s,
            Err(e) => return (err(e), Effect::None),
        };
        let o = match self.caps.lookup(s.handle, Rights::WRITE) {
            Ok(o) => o,
            Err(e) => return (err(e), Effect::None),
        };
        let Some(obj) = self.objects[o] else {
            return (Expect::Any, Effect::None);
        };
        let target = u64::from(match s.matrix {
            WeightMatrix::Input => obj.units * obj.inputs,
            WeightMatrix::Recurrent => obj.nnz,
            WeightMatrix::Readout => obj.units * obj.outputs,
        });
        if u64::from(s.offset) + u64::from(s.count) > target {
            return (err(Errno::DimensionMismatch), Effect::None);
        }
        let n = 4 * u64::from(s.count);
        match self.readable(s.data_ptr, n) {
            Err(e) => (e, Effect::None),
            // What was written above (the arena is only ever this call's).
            Ok(None) => {
                let mut good = true;
                for i in 0..u64::from(s.count) {
                    let mut w = [0u8; 4];
                    get(s.data_ptr + 4 * i, &mut w);
                    good &= (-65_536..65_536).contains(&i32::from_le_bytes(w));
                }
                if good {
                    (ok(u64::from(s.count)), Effect::None)
                } else {
                    (err(Errno::InvalidArgument), Effect::None)
                }
            }
            // -1 each: in range.
            Ok(Some(Content::Ff)) => (ok(u64::from(s.count)), Effect::None),
            Ok(Some(_)) => (Expect::Any, Effect::None),
        }
    }

    fn introspect(&mut self, a: &mut [u64; 6]) -> (Expect, Effect) {
        let handle = match self.handle_for(Rights::READ) {
            Some((h, _)) if !self.hostile_here() => h,
            _ => self.handle(),
        };
        let len = ReservoirDebugInfo::SIZE as u64;
        let out_ptr = self.pointer(len);
        let mut bytes = IntrospectArgs {
            handle: CapHandle::new(0, 0, Rights::NONE),
            out_ptr,
        }
        .to_bytes();
        bytes[0..8].copy_from_slice(&handle.to_le_bytes());
        let (p, seen) = self.struct_at(bytes);
        a[0] = p;
        let bytes = match seen {
            Ok(b) => b,
            Err(e) => return (e, Effect::None),
        };
        let s = match IntrospectArgs::from_bytes(&bytes) {
            Ok(s) => s,
            Err(e) => return (err(e), Effect::None),
        };
        if let Err(e) = self.caps.lookup(s.handle, Rights::READ) {
            return (err(e), Effect::None);
        }
        if let Err(e) = self.writable(s.out_ptr, len) {
            return (e, Effect::None);
        }
        (ok(len), Effect::None)
    }

    /// Records a call's answer: the tally, the model's check, and on success what changed.
    fn record(
        &mut self,
        number: u64,
        a: &[u64; 6],
        expect: Expect,
        effect: Effect,
        ret: i64,
        preserved: bool,
    ) {
        self.calls += 1;
        let slot = if ret >= 0 {
            0
        } else if Errno::from_code(ret).is_some() {
            (-ret) as usize
        } else {
            16
        };
        self.tally[slot] += 1;
        let fits = match expect {
            Expect::Exactly(v) => {
                self.exact += 1;
                v == ret
            }
            Expect::Any => slot != 16,
        };
        if !fits || !preserved {
            self.mismatches += 1;
            if self.mismatches <= 4 {
                let _ = logln!(
                    "hostile: call {} number {number:#x} args {:#x} {:#x}: got {ret}, expected {expect:?}{}",
                    self.calls,
                    a[0],
                    a[1],
                    if preserved { "" } else { " (registers not preserved)" }
                );
            }
            return;
        }
        if ret < 0 {
            return;
        }
        match effect {
            Effect::None => {}
            Effect::Mutex(m, held) => self.mutex_held[m] = held,
            Effect::Created(h, o) => {
                self.caps.insert(h, self.created, None);
                self.objects[self.created] = Some(o);
                self.created += 1;
            }
            Effect::Cap(h, o, parent) => self.caps.insert(h, o, parent),
            Effect::Revoked(h) => {
                let before = self.caps.slots;
                let gens = self.caps.generation;
                self.caps.revoke(h.index as usize);
                for i in 0..CAPS {
                    if let (Some(c), None) = (before[i], self.caps.slots[i]) {
                        let stale = CapHandle::new(i as u16, gens[i], c.rights).to_raw();
                        self.stale[self.stale_len % self.stale.len()] = stale;
                        self.stale_len += 1;
                    }
                }
            }
            Effect::Mapped(o) => {
                if let Some(obj) = self.objects[o].as_mut() {
                    obj.mapped = Some(ret as u64);
                }
            }
        }
    }
}

/// What a successful call changes in the model.
#[derive(Clone, Copy)]
enum Effect {
    None,
    Mutex(usize, bool),
    Created(CapHandle, Object),
    Cap(CapHandle, usize, Option<(usize, u32)>),
    Revoked(CapHandle),
    Mapped(usize),
}

fn main(arg: u64) -> i64 {
    let calls = arg & 0xffff_ffff;
    let mut m = Model::new(arg >> 32);
    for _ in 0..calls {
        let (number, a, expect, effect) = m.call();
        let keep = [m.rng.next_u64(), m.rng.next_u64()];
        let rsp = match m.pick(32) {
            0 => Some(0xffff_8000_0000_0000 | m.rng.next_u64()),
            1 => Some(m.rng.next_u64()),
            2 => Some(0),
            _ => None,
        };
        let r = probe_syscall(number, a, keep, rsp);
        m.record(number, &a, expect, effect, r.ret, r.preserved);
    }
    if m.mismatches > 0 {
        let _ = logln!(
            "hostile: {} of {} answers did not fit the model",
            m.mismatches,
            m.calls
        );
        return -1 - m.mismatches.min(1 << 40) as i64;
    }
    let low = digest(&m.tally) & 0xffff_ffff;
    (low | m.exact.min((1 << 30) - 1) << 32) as i64
}
