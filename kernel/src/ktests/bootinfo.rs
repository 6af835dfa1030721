//! Boot information tests: both parsers accept well-formed structures and reject corrupt,
//! truncated or incomplete ones with the error that names the problem.

use alloc::string::String;
use alloc::vec::Vec;

use echos_kpolicy::memmap::RegionKind;

use super::Kernel;
use crate::bootinfo::{self, BootInfoError, Protocol, MULTIBOOT2_MAGIC, PVH_MAGIC};
use crate::{ensure, kernel_test};

fn this_boots_information_is_valid(k: &mut Kernel) -> Result<(), String> {
    let b = &k.boot;
    ensure!(
        b.arg("test").is_some(),
        "the test boot's command line lacks `test`: {:?}",
        b.cmdline()
    );
    let usable: u64 = b
        .regions()
        .iter()
        .filter(|r| r.kind == RegionKind::Usable)
        .map(|r| r.len)
        .sum();
    ensure!(usable >= 32 << 20, "only {usable} usable bytes reported");
    let _ = MULTIBOOT2_MAGIC;
    ensure!(
        matches!(b.protocol, Protocol::Pvh | Protocol::Multiboot2),
        "protocol"
    );
    Ok(())
}
kernel_test!(this_boots_information_is_valid);

// --- PVH -------------------------------------------------------------------------------------

const MEMMAP_AT: u64 = 0x9000;
const CMDLINE_AT: u64 = 0xa000;

fn pvh_start_info(magic: u32, version: u32, entries: u32, cmdline: u64) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&magic.to_le_bytes());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes()); // flags
    v.extend_from_slice(&0u32.to_le_bytes()); // nr_modules
    v.extend_from_slice(&0u64.to_le_bytes()); // modlist_paddr
    v.extend_from_slice(&cmdline.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes()); // rsdp_paddr
    v.extend_from_slice(&MEMMAP_AT.to_le_bytes());
    v.extend_from_slice(&entries.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

fn e820(entries: &[(u64, u64, u32)]) -> Vec<u8> {
    let mut v = Vec::new();
    for &(base, len, kind) in entries {
        v.extend_from_slice(&base.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
    }
    v
}

const GOOD_MAP: [(u64, u64, u32); 3] = [
    (0, 0x9fc00, 1),
    (0xf0000, 0x10000, 2),
    (0x100000, 0x7f00000, 1),
];

fn pvh_parses_memory_map_and_command_line(_: &mut Kernel) -> Result<(), String> {
    let info = pvh_start_info(PVH_MAGIC, 1, 3, CMDLINE_AT);
    let map = e820(&GOOD_MAP);
    let cmd = b"test mode=fast\0".to_vec();
    let mem = |addr: u64, len: usize| -> Option<&[u8]> {
        match addr {
            MEMMAP_AT => map.get(..len),
            CMDLINE_AT => cmd.get(..len.min(cmd.len())),
            _ => None,
        }
    };
    let b = bootinfo::parse_pvh(&info, mem).map_err(|e| alloc::format!("{e}"))?;
    ensure!(b.regions().len() == 3, "{} regions", b.regions().len());
    ensure!(
        b.regions()[1].kind == RegionKind::Reserved && b.regions()[2].len == 0x7f00000,
        "regions {:?}",
        b.regions()
    );
    ensure!(
        b.cmdline() == "test mode=fast" && b.arg("mode") == Some("fast"),
        "cmdline {:?}",
        b.cmdline()
    );
    Ok(())
}
kernel_test!(pvh_parses_memory_map_and_command_line);

fn pvh_rejects_corrupt_start_info(_: &mut Kernel) -> Result<(), String> {
    let map = e820(&GOOD_MAP);
    let mem = |addr: u64, len: usize| -> Option<&[u8]> {
        (addr == MEMMAP_AT).then(|| map.get(..len)).flatten()
    };
    let bad_magic = bootinfo::parse_pvh(&pvh_start_info(0xdead_beef, 1, 3, 0), mem).err();
    ensure!(
        bad_magic
            == Some(BootInfoError::BadMagic {
                found: 0xdead_beef,
                expected: PVH_MAGIC
            }),
        "bad magic gave {bad_magic:?}"
    );
    let v0 = bootinfo::parse_pvh(&pvh_start_info(PVH_MAGIC, 0, 3, 0), mem).err();
    ensure!(
        v0 == Some(BootInfoError::NoMemoryMapInVersion { version: 0 }),
        "version 0 gave {v0:?}"
    );
    let short = bootinfo::parse_pvh(&pvh_start_info(PVH_MAGIC, 1, 3, 0)[..40], mem).err();
    ensure!(
        matches!(
            short,
            Some(BootInfoError::Truncated {
                needed: 56,
                available: 40,
                ..
            })
        ),
        "truncated gave {short:?}"
    );
    let empty = bootinfo::parse_pvh(&pvh_start_info(PVH_MAGIC, 1, 0, 0), mem).err();
    ensure!(
        empty == Some(BootInfoError::NoMemoryMap),
        "no entries gave {empty:?}"
    );
    let too_many = bootinfo::parse_pvh(&pvh_start_info(PVH_MAGIC, 1, 100_000, 0), mem).err();
    ensure!(
        matches!(too_many, Some(BootInfoError::TooManyRegions { .. })),
        "huge count gave {too_many:?}"
    );
    let unmapped = bootinfo::parse_pvh(&pvh_start_info(PVH_MAGIC, 1, 3, 0), |_, _| None).err();
    ensure!(
        unmapped == Some(BootInfoError::Missing { paddr: MEMMAP_AT }),
        "unmapped map gave {unmapped:?}"
    );
    Ok(())
}
kernel_test!(pvh_rejects_corrupt_start_info);

fn pvh_rejects_bad_regions_and_maps_without_ram(_: &mut Kernel) -> Result<(), String> {
    let check = |entries: &[(u64, u64, u32)]| {
        let map = e820(entries);
        let mem = |addr: u64, len: usize| -> Option<&[u8]> {
            (addr == MEMMAP_AT).then(|| map.get(..len)).flatten()
        };
        bootinfo::parse_pvh(&pvh_start_info(PVH_MAGIC, 1, entries.len() as u32, 0), mem).err()
    };
    // Empty entries are padding, dropped; a map of nothing else has no memory map at all.
    let zero = check(&[(0x100000, 0, 1)]);
    ensure!(
        zero == Some(BootInfoError::NoMemoryMap),
        "a map of one empty entry gave {zero:?}"
    );
    let padded = check(&[(0x100000, 0x100000, 1), (0, 0, 0)]);
    ensure!(padded.is_none(), "a padded map was refused: {padded:?}");
    let wraps = check(&[(0x100000, 0x1000, 1), (u64::MAX - 0xfff, 0x2000, 1)]);
    ensure!(
        matches!(wraps, Some(BootInfoError::BadRegion { index: 1, .. })),
        "wrapping region gave {wraps:?}"
    );
    let no_ram = check(&[(0xf0000, 0x10000, 2)]);
    ensure!(
        no_ram == Some(BootInfoError::NoUsableMemory),
        "reserved-only map gave {no_ram:?}"
    );
    Ok(())
}
kernel_test!(pvh_rejects_bad_regions_and_maps_without_ram);

// --- multiboot2 -------------------------------------------------------------------------------

fn tag(out: &mut Vec<u8>, tag_type: u32, body: &[u8]) {
    out.extend_from_slice(&tag_type.to_le_bytes());
    out.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

fn mb2(cmdline: Option<&[u8]>, mmap_entry_size: Option<u32>, end_tag: bool) -> Vec<u8> {
    let mut v = alloc::vec![0u8; 8];
    if let Some(c) = cmdline {
        tag(&mut v, 1, c);
    }
    if let Some(es) = mmap_entry_size {
        let mut body = Vec::new();
        body.extend_from_slice(&es.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&e820(&GOOD_MAP));
        tag(&mut v, 6, &body);
    }
    if end_tag {
        tag(&mut v, 0, &[]);
    }
    let total = v.len() as u32;
    v[..4].copy_from_slice(&total.to_le_bytes());
    v
}

fn multiboot2_parses_memory_map_and_command_line(_: &mut Kernel) -> Result<(), String> {
    let b = bootinfo::parse_multiboot2(&mb2(Some(b"test\0"), Some(24), true))
        .map_err(|e| alloc::format!("{e}"))?;
    ensure!(b.protocol == Protocol::Multiboot2, "protocol");
    ensure!(
        b.regions().len() == 3 && b.regions()[0].kind == RegionKind::Usable,
        "regions {:?}",
        b.regions()
    );
    ensure!(b.cmdline() == "test", "cmdline {:?}", b.cmdline());
    Ok(())
}
kernel_test!(multiboot2_parses_memory_map_and_command_line);

fn multiboot2_rejects_corrupt_structures(_: &mut Kernel) -> Result<(), String> {
    let good = mb2(Some(b"x\0"), Some(24), true);
    let truncated = bootinfo::parse_multiboot2(&good[..good.len() - 16]).err();
    ensure!(
        matches!(truncated, Some(BootInfoError::Truncated { .. })),
        "truncated gave {truncated:?}"
    );
    let mut huge = good.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = bootinfo::parse_multiboot2(&huge).err();
    ensure!(
        e == Some(BootInfoError::BadTotalSize { size: u32::MAX }),
        "huge size gave {e:?}"
    );
    let mut bad_tag = good.clone();
    bad_tag[12..16].copy_from_slice(&4u32.to_le_bytes());
    let e = bootinfo::parse_multiboot2(&bad_tag).err();
    ensure!(
        matches!(
            e,
            Some(BootInfoError::BadTag {
                offset: 8,
                size: 4,
                ..
            })
        ),
        "tag size 4 gave {e:?}"
    );
    let e = bootinfo::parse_multiboot2(&mb2(Some(b"x\0"), Some(24), false)).err();
    ensure!(
        e == Some(BootInfoError::MissingEndTag),
        "no end tag gave {e:?}"
    );
    let e = bootinfo::parse_multiboot2(&mb2(Some(b"x\0"), None, true)).err();
    ensure!(
        e == Some(BootInfoError::NoMemoryMap),
        "no memory map gave {e:?}"
    );
    let e = bootinfo::parse_multiboot2(&mb2(Some(b"x\0"), Some(8), true)).err();
    ensure!(
        e == Some(BootInfoError::BadEntrySize { size: 8 }),
        "entry size 8 gave {e:?}"
    );
    let e = bootinfo::parse_multiboot2(&mb2(Some(b"no terminator"), Some(24), true)).err();
    ensure!(
        e == Some(BootInfoError::BadCmdline),
        "unterminated cmdline gave {e:?}"
    );
    let e = bootinfo::parse_multiboot2(&[1, 2, 3]).err();
    ensure!(
        matches!(e, Some(BootInfoError::Truncated { .. })),
        "3-byte structure gave {e:?}"
    );
    Ok(())
}
kernel_test!(multiboot2_rejects_corrupt_structures);
