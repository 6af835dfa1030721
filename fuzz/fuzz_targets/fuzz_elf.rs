//! The kernel's ELF checker (echos-kpolicy `elf::parse`) on untrusted images. An accepted image
//! must keep the policy the checker promises: segments in user space above page 0 and inside
//! the file, none writable and executable, the entry in an executable segment.
#![no_main]

use echos_abi::USER_SPACE_END;
use echos_kpolicy::elf;
use echos_kpolicy::uaccess::MIN_USER_ADDR;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    // The kernel's MAX_SEGMENTS, and a smaller table to reach the "too many" path.
    check(elf::parse::<8>(data), data.len());
    check(elf::parse::<2>(data), data.len());
}

fn check<const N: usize>(r: Result<elf::ElfImage<N>, elf::ElfError>, file_len: usize) {
    let Ok(img) = r else {
        return;
    };
    assert!(!img.segments().is_empty());
    for s in img.segments() {
        let end = s.vaddr.checked_add(s.mem_size).expect("segment end fits");
        assert!(s.vaddr >= MIN_USER_ADDR && end <= USER_SPACE_END, "{s:?}");
        assert!(s.file_size <= s.mem_size, "{s:?}");
        let file_end = s
            .file_offset
            .checked_add(s.file_size)
            .expect("file end fits");
        assert!(file_end <= file_len as u64, "{s:?}");
        assert!(!(s.perms.write && s.perms.execute), "{s:?}");
    }
    assert!(
        img.segments()
            .iter()
            .any(|s| s.perms.execute && s.vaddr <= img.entry && img.entry < s.vaddr + s.mem_size),
        "entry {:#x} outside executable segments",
        img.entry
    );
}
