//! Boot information from the two loaders we support, parsed from bytes and validated: PVH's
//! `hvm_start_info` (QEMU `-kernel`) and the multiboot2 information structure (GRUB). Both give a
//! memory map and a command line. Anything malformed is a typed error naming the problem; the
//! boot path prints it and stops.

use core::fmt;
use echos_kpolicy::memmap::{Region, RegionKind};

pub const PVH_MAGIC: u32 = 0x336e_c578;
pub const MULTIBOOT2_MAGIC: u32 = 0x36d7_6289;

/// Most memory-map entries we keep (QEMU gives 3–6, real firmware tens).
pub const MAX_REGIONS: usize = 64;
/// Longest command line kept; longer ones are an error rather than silently cut.
pub const MAX_CMDLINE: usize = 512;
/// Largest multiboot2 structure we accept (GRUB's are a few KiB).
pub const MAX_MULTIBOOT2_SIZE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Pvh,
    Multiboot2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootInfoError {
    /// Entered with a loader magic we do not know (not PVH, not multiboot2).
    UnknownLoader { magic: u32 },
    /// The boot information pointer is null or outside mapped memory.
    Missing { paddr: u64 },
    /// The structure's own magic is wrong.
    BadMagic { found: u32, expected: u32 },
    /// PVH `hvm_start_info` version 0 has no memory map.
    NoMemoryMapInVersion { version: u32 },
    /// Fewer bytes than the structure needs.
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// A multiboot2 total size out of bounds.
    BadTotalSize { size: u32 },
    /// A multiboot2 tag whose size is below 8 or runs past the end.
    BadTag {
        offset: usize,
        tag_type: u32,
        size: u32,
    },
    /// No end tag before the end of the structure.
    MissingEndTag,
    /// The memory map tag's entry size is smaller than an entry.
    BadEntrySize { size: u32 },
    /// The loader gave no memory map at all.
    NoMemoryMap,
    /// More memory map entries than `MAX_REGIONS`.
    TooManyRegions { count: usize },
    /// A memory map entry whose end overflows the address space.
    BadRegion { index: usize, base: u64, len: u64 },
    /// The memory map says there is no usable RAM.
    NoUsableMemory,
    /// The command line is not NUL-terminated within `MAX_CMDLINE` bytes or not UTF-8.
    BadCmdline,
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnknownLoader { magic } => write!(f, "entered by an unknown loader (magic {magic:#x}); boot with PVH (QEMU -kernel) or multiboot2 (GRUB)"),
            Self::Missing { paddr } => write!(f, "boot information pointer {paddr:#x} is null or not in mapped memory"),
            Self::BadMagic { found, expected } => write!(f, "boot information magic is {found:#x}, expected {expected:#x}: the structure is corrupt"),
            Self::NoMemoryMapInVersion { version } => write!(f, "PVH start info version {version} carries no memory map (version 1 or later needed)"),
            Self::Truncated { what, needed, available } => write!(f, "{what} needs {needed} bytes but only {available} are present"),
            Self::BadTotalSize { size } => write!(f, "multiboot2 information size {size} is outside 16..={MAX_MULTIBOOT2_SIZE}"),
            Self::BadTag { offset, tag_type, size } => write!(f, "multiboot2 tag of type {tag_type} at offset {offset} has bad size {size}"),
            Self::MissingEndTag => write!(f, "multiboot2 information has no end tag"),
            Self::BadEntrySize { size } => write!(f, "memory map entry size {size} is smaller than an entry (24 bytes)"),
            Self::NoMemoryMap => write!(f, "the loader gave no memory map"),
            Self::TooManyRegions { count } => write!(f, "memory map has {count} entries, more than the {MAX_REGIONS} supported"),
            Self::BadRegion { index, base, len } => write!(f, "memory map entry #{index} at {base:#x} with length {len:#x} runs past the end of the address space"),
            Self::NoUsableMemory => write!(f, "the memory map lists no usable RAM"),
            Self::BadCmdline => write!(f, "the command line is not NUL-terminated within {MAX_CMDLINE} bytes or not UTF-8"),
        }
    }
}

/// The validated boot information, copied out of firmware memory.
#[derive(Clone)]
pub struct BootInfo {
    pub protocol: Protocol,
    regions: [Region; MAX_REGIONS],
    region_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
}

impl BootInfo {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            regions: [Region::new(0, 0, RegionKind::Reserved); MAX_REGIONS],
            region_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.region_count]
    }

    pub fn cmdline(&self) -> &str {
        // Validated as UTF-8 when copied in.
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// The value of `key=value` on the command line, or `Some("")` for a bare `key`.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.cmdline().split_ascii_whitespace().find_map(|w| {
            let (k, v) = w.split_once('=').unwrap_or((w, ""));
            (k == key).then_some(v)
        })
    }

    fn push_region(&mut self, base: u64, len: u64, e820_type: u32) -> Result<(), BootInfoError> {
        let index = self.region_count;
        if index == MAX_REGIONS {
            return Err(BootInfoError::TooManyRegions { count: index + 1 });
        }
        // Firmware (QEMU's PVH table among them) pads maps with empty entries; like Linux's
        // e820 sanitiser we drop them. An entry that wraps the address space is corruption.
        if len == 0 {
            return Ok(());
        }
        if base.checked_add(len).is_none() {
            return Err(BootInfoError::BadRegion { index, base, len });
        }
        self.regions[index] = Region::new(base, len, RegionKind::from_e820(e820_type));
        self.region_count += 1;
        Ok(())
    }

    fn set_cmdline(&mut self, bytes: &[u8]) -> Result<(), BootInfoError> {
        let len = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(BootInfoError::BadCmdline)?;
        if len > MAX_CMDLINE {
            return Err(BootInfoError::BadCmdline);
        }
        core::str::from_utf8(&bytes[..len]).map_err(|_| BootInfoError::BadCmdline)?;
        self.cmdline[..len].copy_from_slice(&bytes[..len]);
        self.cmdline_len = len;
        Ok(())
    }

    fn finish(self) -> Result<Self, BootInfoError> {
        if self.region_count == 0 {
            return Err(BootInfoError::NoMemoryMap);
        }
        if !self.regions().iter().any(|r| r.kind == RegionKind::Usable) {
            return Err(BootInfoError::NoUsableMemory);
        }
        Ok(self)
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | (u64::from(u32_at(b, off + 4)) << 32)
}

fn need(what: &'static str, b: &[u8], needed: usize) -> Result<(), BootInfoError> {
    if b.len() < needed {
        Err(BootInfoError::Truncated {
            what,
            needed,
            available: b.len(),
        })
    } else {
        Ok(())
    }
}

/// Size of `hvm_start_info` version 1.
pub const PVH_START_INFO_SIZE: usize = 56;
const PVH_MEMMAP_ENTRY_SIZE: usize = 24;

/// Parses PVH `hvm_start_info` (Xen's `arch-x86/hvm/start_info.h`). `memory(paddr, len)` returns
/// the bytes of the memory map and command line it points to, or `None` if unmapped.
pub fn parse_pvh<'m>(
    start_info: &[u8],
    memory: impl Fn(u64, usize) -> Option<&'m [u8]>,
) -> Result<BootInfo, BootInfoError> {
    need("PVH start info", start_info, 8)?;
    let magic = u32_at(start_info, 0);
    if magic != PVH_MAGIC {
        return Err(BootInfoError::BadMagic {
            found: magic,
            expected: PVH_MAGIC,
        });
    }
    let version = u32_at(start_info, 4);
    if version < 1 {
        return Err(BootInfoError::NoMemoryMapInVersion { version });
    }
    need("PVH start info", start_info, PVH_START_INFO_SIZE)?;
    let cmdline_paddr = u64_at(start_info, 24);
    let memmap_paddr = u64_at(start_info, 40);
    let memmap_entries = u32_at(start_info, 48) as usize;
    let mut info = BootInfo::new(Protocol::Pvh);
    if memmap_entries == 0 || memmap_paddr == 0 {
        return Err(BootInfoError::NoMemoryMap);
    }
    if memmap_entries > MAX_REGIONS {
        return Err(BootInfoError::TooManyRegions {
            count: memmap_entries,
        });
    }
    let table_len = memmap_entries * PVH_MEMMAP_ENTRY_SIZE;
    let table = memory(memmap_paddr, table_len).ok_or(BootInfoError::Missing {
        paddr: memmap_paddr,
    })?;
    need("PVH memory map", table, table_len)?;
    for e in table.chunks_exact(PVH_MEMMAP_ENTRY_SIZE) {
        info.push_region(u64_at(e, 0), u64_at(e, 8), u32_at(e, 16))?;
    }
    if cmdline_paddr != 0 {
        // The line may end near the end of RAM: take what is mapped, up to the limit.
        let bytes = (1..=MAX_CMDLINE + 1)
            .rev()
            .find_map(|n| memory(cmdline_paddr, n))
            .ok_or(BootInfoError::Missing {
                paddr: cmdline_paddr,
            })?;
        info.set_cmdline(bytes)?;
    }
    info.finish()
}

/// Parses the multiboot2 boot information structure (the multiboot2 specification, §3.6).
pub fn parse_multiboot2(mbi: &[u8]) -> Result<BootInfo, BootInfoError> {
    need("multiboot2 information", mbi, 8)?;
    let total = u32_at(mbi, 0);
    if !(16..=MAX_MULTIBOOT2_SIZE as u32).contains(&total) {
        return Err(BootInfoError::BadTotalSize { size: total });
    }
    let total = total as usize;
    need("multiboot2 information", mbi, total)?;
    let mbi = &mbi[..total];
    let mut info = BootInfo::new(Protocol::Multiboot2);
    let mut off = 8;
    let mut saw_mmap = false;
    loop {
        if off + 8 > total {
            return Err(BootInfoError::MissingEndTag);
        }
        let tag_type = u32_at(mbi, off);
        let size = u32_at(mbi, off + 4);
        if size < 8 || off + size as usize > total {
            return Err(BootInfoError::BadTag {
                offset: off,
                tag_type,
                size,
            });
        }
        let body = &mbi[off + 8..off + size as usize];
        match tag_type {
            0 => break,
            1 => info.set_cmdline(body)?,
            6 => {
                need("multiboot2 memory map tag", body, 8)?;
                let entry_size = u32_at(body, 0);
                if entry_size < 24 {
                    return Err(BootInfoError::BadEntrySize { size: entry_size });
                }
                for e in body[8..].chunks_exact(entry_size as usize) {
                    info.push_region(u64_at(e, 0), u64_at(e, 8), u32_at(e, 16))?;
                }
                saw_mmap = true;
            }
            _ => {}
        }
        off += (size as usize).div_ceil(8) * 8;
    }
    if !saw_mmap {
        return Err(BootInfoError::NoMemoryMap);
    }
    info.finish()
}
