//! Validating ELF64 loader plan for user programs: reads the file header and program headers of
//! an untrusted image and returns the segments to map, or a typed error naming what is wrong.
//! Nothing is trusted: every offset, size and address is range-checked with overflow-safe
//! arithmetic before use, and the parser never indexes out of bounds or allocates.
//!
//! Why not a crate: `goblin` builds `no_std` on stable, but its program-header parser returns a
//! `Vec` (its `endian_fd` feature turns on `alloc`); `xmas-elf` builds too but leaves bounds and
//! semantic checks (kernel addresses, overlaps, W^X) to the caller. The checks are the point
//! here, and the two structures read are small, so this module reads them itself.
//!
//! Policy: static x86_64 executables only (`ET_EXEC`, no `PT_INTERP`); loadable segments must
//! lie in user space above page 0, must not share a page with each other, must not be both
//! writable and executable, and the entry point must be in an executable segment.
#![forbid(unsafe_code)]

use crate::uaccess::{Perms, MIN_USER_ADDR};
use echos_abi::USER_SPACE_END;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const PAGE: u64 = 4096;

const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The file ends before the structure at `needed` bytes does.
    Truncated {
        needed: u64,
        len: usize,
    },
    BadMagic,
    /// Not ELFCLASS64.
    BadClass {
        class: u8,
    },
    /// Not little-endian.
    BadEndian {
        data: u8,
    },
    BadVersion {
        version: u32,
    },
    /// `ET_DYN` (position-independent or shared object) or anything but `ET_EXEC`.
    NotExecutable {
        e_type: u16,
    },
    BadMachine {
        machine: u16,
    },
    BadHeaderSize {
        ehsize: u16,
        phentsize: u16,
    },
    /// The program asks for a dynamic loader or dynamic linking; user programs are static.
    NeedsInterpreter,
    /// `offset + size` or `vaddr + memsz` wraps 64 bits.
    Overflow {
        segment: usize,
    },
    /// `p_filesz > p_memsz`.
    FileSizeAboveMemSize {
        segment: usize,
    },
    /// The segment reaches into the kernel half (or beyond user space).
    KernelAddress {
        segment: usize,
        end: u64,
    },
    /// The segment starts in page 0, which stays unmapped to catch null pointers.
    NullPage {
        segment: usize,
    },
    /// `p_align` is not a power of two, or `vaddr` and `offset` disagree modulo it.
    Misaligned {
        segment: usize,
    },
    /// Two loadable segments share a page.
    Overlap {
        first: usize,
        second: usize,
    },
    /// A segment both writable and executable.
    WritableAndExecutable {
        segment: usize,
    },
    NoLoadableSegments,
    TooManySegments {
        capacity: usize,
    },
    /// The entry point is not inside an executable loadable segment.
    EntryOutsideCode {
        entry: u64,
    },
}

impl core::fmt::Display for ElfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Truncated { needed, len } => {
                write!(f, "ELF truncated: needs {needed} bytes, file has {len}")
            }
            Self::BadMagic => write!(f, "not an ELF file (bad magic)"),
            Self::BadClass { class } => write!(f, "ELF class {class} is not 64-bit"),
            Self::BadEndian { data } => write!(f, "ELF data encoding {data} is not little-endian"),
            Self::BadVersion { version } => write!(f, "ELF version {version} is not 1"),
            Self::NotExecutable { e_type } => {
                write!(f, "ELF type {e_type} is not a static executable (ET_EXEC)")
            }
            Self::BadMachine { machine } => write!(f, "ELF machine {machine} is not x86_64"),
            Self::BadHeaderSize { ehsize, phentsize } => write!(
                f,
                "ELF header size {ehsize} / program header size {phentsize} are not 64 / 56"
            ),
            Self::NeedsInterpreter => {
                write!(
                    f,
                    "program needs a dynamic loader; user programs must be static"
                )
            }
            Self::Overflow { segment } => write!(f, "segment {segment}: offset or size overflows"),
            Self::FileSizeAboveMemSize { segment } => {
                write!(f, "segment {segment}: file size exceeds memory size")
            }
            Self::KernelAddress { segment, end } => write!(
                f,
                "segment {segment} ends at {end:#x}, past user space ({USER_SPACE_END:#x})"
            ),
            Self::NullPage { segment } => write!(f, "segment {segment} maps page 0"),
            Self::Misaligned { segment } => write!(f, "segment {segment}: bad alignment"),
            Self::Overlap { first, second } => {
                write!(f, "segments {first} and {second} share a page")
            }
            Self::WritableAndExecutable { segment } => {
                write!(f, "segment {segment} is both writable and executable")
            }
            Self::NoLoadableSegments => write!(f, "ELF has no loadable segment"),
            Self::TooManySegments { capacity } => {
                write!(f, "ELF has more than {capacity} loadable segments")
            }
            Self::EntryOutsideCode { entry } => {
                write!(f, "entry point {entry:#x} is not in an executable segment")
            }
        }
    }
}

impl From<ElfError> for echos_abi::Errno {
    /// What a task that asked the kernel to load a program is told; the kernel log gets the
    /// detailed [`ElfError`].
    fn from(_: ElfError) -> Self {
        echos_abi::Errno::BadElf
    }
}

/// One segment to map: `mem_size` bytes at `vaddr`, the first `file_size` copied from
/// `file_offset`, the rest zeroed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LoadSegment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub perms: Perms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfImage<const N: usize> {
    pub entry: u64,
    segments: [LoadSegment; N],
    len: usize,
}

impl<const N: usize> ElfImage<N> {
    pub fn segments(&self) -> &[LoadSegment] {
        &self.segments[..self.len]
    }
}

fn slice(bytes: &[u8], at: u64, len: usize) -> Result<&[u8], ElfError> {
    let truncated = ElfError::Truncated {
        needed: at.saturating_add(len as u64),
        len: bytes.len(),
    };
    let start = usize::try_from(at).map_err(|_| truncated)?;
    let end = start.checked_add(len).ok_or(truncated)?;
    bytes.get(start..end).ok_or(truncated)
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

/// Page range `[first, last]` a segment touches (memsz > 0, end already checked).
fn pages(s: &LoadSegment) -> (u64, u64) {
    (s.vaddr / PAGE, (s.vaddr + s.mem_size - 1) / PAGE)
}

/// Parses and validates `bytes`; at most `N` loadable segments.
pub fn parse<const N: usize>(bytes: &[u8]) -> Result<ElfImage<N>, ElfError> {
    let h = slice(bytes, 0, EHDR_SIZE)?;
    if h[..4] != *b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    if h[4] != 2 {
        return Err(ElfError::BadClass { class: h[4] });
    }
    if h[5] != 1 {
        return Err(ElfError::BadEndian { data: h[5] });
    }
    let version = u32_at(h, 20);
    if h[6] != 1 || version != 1 {
        return Err(ElfError::BadVersion { version });
    }
    let e_type = u16_at(h, 16);
    let machine = u16_at(h, 18);
    if machine != EM_X86_64 {
        return Err(ElfError::BadMachine { machine });
    }
    let (ehsize, phentsize) = (u16_at(h, 52), u16_at(h, 54));
    if ehsize as usize != EHDR_SIZE || phentsize as usize != PHDR_SIZE {
        return Err(ElfError::BadHeaderSize { ehsize, phentsize });
    }
    let entry = u64_at(h, 24);
    let phoff = u64_at(h, 32);
    let phnum = u16_at(h, 56) as usize;
    // phnum ≤ 65535, so the table is at most 3.6 MiB: no overflow in usize.
    let table = slice(bytes, phoff, phnum * PHDR_SIZE)?;

    let mut image = ElfImage {
        entry,
        segments: [LoadSegment::default(); N],
        len: 0,
    };
    for (i, ph) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let p_type = u32_at(ph, 0);
        if p_type == PT_INTERP || p_type == PT_DYNAMIC {
            return Err(ElfError::NeedsInterpreter);
        }
        if p_type != PT_LOAD {
            continue;
        }
        let flags = u32_at(ph, 4);
        let s = LoadSegment {
            file_offset: u64_at(ph, 8),
            vaddr: u64_at(ph, 16),
            file_size: u64_at(ph, 32),
            mem_size: u64_at(ph, 40),
            perms: Perms {
                read: flags & PF_R != 0,
                write: flags & PF_W != 0,
                execute: flags & PF_X != 0,
            },
        };
        let align = u64_at(ph, 48);
        if s.file_size > s.mem_size {
            return Err(ElfError::FileSizeAboveMemSize { segment: i });
        }
        let file_end = s
            .file_offset
            .checked_add(s.file_size)
            .ok_or(ElfError::Overflow { segment: i })?;
        if file_end > bytes.len() as u64 {
            return Err(ElfError::Truncated {
                needed: file_end,
                len: bytes.len(),
            });
        }
        let end = s
            .vaddr
            .checked_add(s.mem_size)
            .ok_or(ElfError::Overflow { segment: i })?;
        if end > USER_SPACE_END || s.vaddr >= USER_SPACE_END {
            return Err(ElfError::KernelAddress { segment: i, end });
        }
        if s.vaddr < MIN_USER_ADDR {
            return Err(ElfError::NullPage { segment: i });
        }
        if align > 1 && (!align.is_power_of_two() || s.vaddr % align != s.file_offset % align) {
            return Err(ElfError::Misaligned { segment: i });
        }
        if s.perms.write && s.perms.execute {
            return Err(ElfError::WritableAndExecutable { segment: i });
        }
        if s.mem_size == 0 {
            continue;
        }
        // Segment numbers in errors are program-header indices; remember each one's index.
        for (j, other) in image.segments().iter().enumerate() {
            let (a, b) = (pages(other), pages(&s));
            if a.0 <= b.1 && b.0 <= a.1 {
                return Err(ElfError::Overlap {
                    first: image_index(table, j),
                    second: i,
                });
            }
        }
        let slot = image
            .segments
            .get_mut(image.len)
            .ok_or(ElfError::TooManySegments { capacity: N })?;
        *slot = s;
        image.len += 1;
    }
    if image.len == 0 {
        return Err(ElfError::NoLoadableSegments);
    }
    // Checked after the program headers so a dynamic program is reported as needing an
    // interpreter, the more useful message.
    if e_type != ET_EXEC {
        return Err(ElfError::NotExecutable { e_type });
    }
    let in_code = image
        .segments()
        .iter()
        .any(|s| s.perms.execute && s.vaddr <= entry && entry - s.vaddr < s.mem_size);
    if !in_code {
        return Err(ElfError::EntryOutsideCode { entry });
    }
    Ok(image)
}

/// Program-header index of the `n`-th non-empty loadable segment (for error messages).
fn image_index(table: &[u8], n: usize) -> usize {
    table
        .chunks_exact(PHDR_SIZE)
        .enumerate()
        .filter(|(_, ph)| u32_at(ph, 0) == PT_LOAD && u64_at(ph, 40) > 0)
        .nth(n)
        .map_or(n, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[derive(Clone, Copy)]
    struct Ph {
        p_type: u32,
        flags: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
        align: u64,
    }

    fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
        Ph {
            p_type: PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
            align: PAGE,
        }
    }

    /// A hand-built ELF64 image: header, program headers at 64, file padded to `file_len`.
    fn build(entry: u64, phs: &[Ph], file_len: usize) -> Vec<u8> {
        let mut b = std::vec![0u8; file_len.max(EHDR_SIZE + phs.len() * PHDR_SIZE)];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[52..54].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
        b[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
        for (i, p) in phs.iter().enumerate() {
            let o = EHDR_SIZE + i * PHDR_SIZE;
            b[o..o + 4].copy_from_slice(&p.p_type.to_le_bytes());
            b[o + 4..o + 8].copy_from_slice(&p.flags.to_le_bytes());
            b[o + 8..o + 16].copy_from_slice(&p.offset.to_le_bytes());
            b[o + 16..o + 24].copy_from_slice(&p.vaddr.to_le_bytes());
            b[o + 24..o + 32].copy_from_slice(&p.vaddr.to_le_bytes());
            b[o + 32..o + 40].copy_from_slice(&p.filesz.to_le_bytes());
            b[o + 40..o + 48].copy_from_slice(&p.memsz.to_le_bytes());
            b[o + 48..o + 56].copy_from_slice(&p.align.to_le_bytes());
        }
        b
    }

    fn good() -> Vec<u8> {
        build(
            0x40_1000,
            &[
                load(PF_R | PF_X, 0x1000, 0x40_1000, 0x800, 0x800),
                load(PF_R | PF_W, 0x2000, 0x40_3000, 0x100, 0x3000),
            ],
            0x2100,
        )
    }

    #[test]
    fn a_valid_static_executable_gives_its_segments() {
        let img = parse::<4>(&good()).unwrap();
        assert_eq!(img.entry, 0x40_1000);
        assert_eq!(img.segments().len(), 2);
        assert_eq!(img.segments()[1].mem_size, 0x3000);
        assert_eq!(img.segments()[1].perms, Perms::RW);
        assert_eq!(img.segments()[0].perms, Perms::RX);
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        let b = good();
        for cut in 0..b.len() {
            assert!(
                matches!(parse::<4>(&b[..cut]), Err(ElfError::Truncated { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn header_defects_are_named() {
        let set = |at: usize, bytes: &[u8]| {
            let mut b = good();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            parse::<4>(&b).unwrap_err()
        };
        assert_eq!(set(0, b"\x7fELG"), ElfError::BadMagic);
        assert_eq!(set(4, &[1]), ElfError::BadClass { class: 1 });
        assert_eq!(set(5, &[2]), ElfError::BadEndian { data: 2 });
        assert_eq!(set(20, &[2, 0, 0, 0]), ElfError::BadVersion { version: 2 });
        assert_eq!(set(16, &[3, 0]), ElfError::NotExecutable { e_type: 3 });
        assert_eq!(set(18, &[40, 0]), ElfError::BadMachine { machine: 40 });
        assert!(matches!(set(54, &[32, 0]), ElfError::BadHeaderSize { .. }));
        assert!(matches!(
            set(32, &0xffff_ffff_ffff_fff0u64.to_le_bytes()),
            ElfError::Truncated { .. }
        ));
        assert_eq!(
            set(24, &0x40_3000u64.to_le_bytes()),
            ElfError::EntryOutsideCode { entry: 0x40_3000 }
        );
    }

    #[test]
    fn segment_defects_are_named() {
        let one = |p: Ph| parse::<4>(&build(0x40_1000, &[p], 0x2000)).unwrap_err();
        let rx = PF_R | PF_X;
        assert_eq!(
            one(load(rx, 0x1000, 0x40_1000, 0x2000, 0x1000)),
            ElfError::FileSizeAboveMemSize { segment: 0 }
        );
        assert!(matches!(
            one(load(rx, 0x1000, 0x40_1000, 0x2000, 0x2000)),
            ElfError::Truncated { needed: 0x3000, .. }
        ));
        assert_eq!(
            one(load(rx, u64::MAX, 0x40_1000, 2, 2)),
            ElfError::Overflow { segment: 0 }
        );
        assert_eq!(
            one(load(rx, 0x1000, u64::MAX - 0xfff, 0, 0x2000)),
            ElfError::Overflow { segment: 0 }
        );
        // Kernel half, and a segment straddling the top of user space.
        assert!(matches!(
            one(load(rx, 0x1000, 0xffff_ffff_8000_1000, 0x10, 0x10)),
            ElfError::KernelAddress { segment: 0, .. }
        ));
        assert!(matches!(
            one(load(rx, 0x1000, USER_SPACE_END - 0x1000, 0x10, 0x2000)),
            ElfError::KernelAddress { segment: 0, .. }
        ));
        assert_eq!(
            one(load(rx, 0, 0, 0x10, 0x10)),
            ElfError::NullPage { segment: 0 }
        );
        assert_eq!(
            one(Ph {
                align: 3,
                ..load(rx, 0x1000, 0x40_1000, 0x10, 0x10)
            }),
            ElfError::Misaligned { segment: 0 }
        );
        assert_eq!(
            one(load(rx, 0x1000, 0x40_1800, 0x10, 0x10)),
            ElfError::Misaligned { segment: 0 }
        );
        assert_eq!(
            one(load(PF_R | PF_W | PF_X, 0x1000, 0x40_1000, 0x10, 0x10)),
            ElfError::WritableAndExecutable { segment: 0 }
        );
        let interp = Ph {
            p_type: PT_INTERP,
            ..load(PF_R, 0x1000, 0x40_1000, 0x10, 0x10)
        };
        assert_eq!(one(interp), ElfError::NeedsInterpreter);
        let note = Ph {
            p_type: 4,
            ..load(PF_R, 0x1000, 0x40_1000, 0x10, 0x10)
        };
        assert_eq!(one(note), ElfError::NoLoadableSegments);
    }

    #[test]
    fn elf_errors_reach_user_space_as_bad_elf() {
        let e = parse::<4>(&good()[..10]).unwrap_err();
        assert_eq!(echos_abi::Errno::from(e), echos_abi::Errno::BadElf);
    }

    #[test]
    fn overlapping_and_too_many_segments_are_refused() {
        let a = load(PF_R | PF_X, 0x1000, 0x40_1000, 0x10, 0x10);
        let b = load(PF_R, 0x1000, 0x40_1000, 0x10, 0x10);
        let note = Ph { p_type: 4, ..a };
        assert_eq!(
            parse::<4>(&build(0x40_1000, &[note, a, b], 0x2000)).unwrap_err(),
            ElfError::Overlap {
                first: 1,
                second: 2
            }
        );
        let c = load(PF_R, 0x1000, 0x50_1000, 0x10, 0x10);
        assert_eq!(
            parse::<1>(&build(0x40_1000, &[a, c], 0x2000)).unwrap_err(),
            ElfError::TooManySegments { capacity: 1 }
        );
    }

    /// A real ELF: this test binary (a dynamically linked Linux executable). It must be refused
    /// as needing an interpreter, and no prefix of it may make the parser panic.
    #[test]
    fn a_real_dynamic_elf_is_refused_and_its_prefixes_never_panic() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        assert_eq!(parse::<8>(&bytes).unwrap_err(), ElfError::NeedsInterpreter);
        let step = (bytes.len() / 997).max(1);
        for cut in (0..bytes.len())
            .step_by(step)
            .chain(0..4096.min(bytes.len()))
        {
            let _ = parse::<8>(&bytes[..cut]);
        }
    }

    proptest::proptest! {
        /// Random corruption of a valid image never panics, and anything accepted satisfies the
        /// policy: every segment in user space above page 0, in the file, pages disjoint.
        #[test]
        fn corrupted_images_never_panic_and_accepted_ones_obey_policy(
            edits in proptest::collection::vec((0usize..0x200, proptest::num::u8::ANY), 1..8)
        ) {
            let mut b = good();
            for (at, v) in edits {
                b[at] = v;
            }
            if let Ok(img) = parse::<4>(&b) {
                for (i, s) in img.segments().iter().enumerate() {
                    proptest::prop_assert!(s.vaddr >= MIN_USER_ADDR);
                    proptest::prop_assert!(s.vaddr + s.mem_size <= USER_SPACE_END);
                    proptest::prop_assert!(s.file_offset + s.file_size <= b.len() as u64);
                    proptest::prop_assert!(!(s.perms.write && s.perms.execute));
                    for t in &img.segments()[i + 1..] {
                        let (a, c) = (pages(s), pages(t));
                        proptest::prop_assert!(a.1 < c.0 || c.1 < a.0);
                    }
                }
            }
        }
    }
}
