//! The first instructions: the PVH note and multiboot2 header that let QEMU (`-kernel`) and GRUB
//! load us, and the 32-bit entry that builds boot page tables and enters long mode.
//!
//! Both loaders enter in 32-bit protected mode, paging off, with the boot information's physical
//! address in `ebx`. The boot tables identity-map the first 4 GiB with 2 MiB pages; `paging`
//! replaces them with the kernel's own tables (4 KiB pages where guard pages are needed).

use core::arch::global_asm;

/// Value passed to `kernel_entry` when QEMU entered through the PVH note (the multiboot2 entry
/// passes the loader's `eax`, 0x36d76289); `bootinfo` tells them apart.
pub const PROTOCOL_PVH: u32 = 0x336e_c578;

/// Size of the stack `kernel_entry` runs on (the boot stack, with a guard page below it).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

global_asm!(
    r#"
    .section .multiboot2_header, "a"
    .balign 8
mb2_header_start:
    .long 0xe85250d6
    .long 0
    .long mb2_header_end - mb2_header_start
    .long -(0xe85250d6 + (mb2_header_end - mb2_header_start))
    .balign 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad pvh_start
    .balign 4

    .section .boot.text, "ax"
    .code32
    .global _start
_start:
    /* multiboot2: eax holds the magic, ebx the information structure. */
    mov edi, eax
    mov esi, ebx
    jmp common_start32

    .global pvh_start
pvh_start:
    /* PVH: ebx holds the hvm_start_info structure; its own magic is checked in Rust. */
    mov edi, {pvh}
    mov esi, ebx
    jmp common_start32

common_start32:
    cli
    cld
    /* Zero .bss (boot page tables and stacks live there); keeps edi/esi. */
    mov ebp, edi
    mov edx, esi
    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    sub ecx, edi
    shr ecx, 2
    xor eax, eax
    rep stosd
    mov edi, ebp
    mov esi, edx

    /* PML4[0] -> PDPT, PDPT[0..4] -> 4 page directories of 2 MiB pages: identity 0..4 GiB. */
    mov eax, offset boot_pdpt
    or eax, 3
    mov [boot_pml4], eax
    mov ecx, 0
1:
    mov eax, ecx
    shl eax, 12
    add eax, offset boot_pd
    or eax, 3
    mov [boot_pdpt + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jne 1b

    mov ecx, 0
2:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov [boot_pd + ecx * 8], eax
    mov eax, ecx
    shr eax, 11
    mov [boot_pd + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jne 2b

    /* PAE on, CR3, EFER.LME|NXE, paging + write-protect on. */
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16)
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    /* ljmp 0x08:long_mode_start, encoded by hand (ptr16:32 far jump, opcode 0xea). */
    .byte 0xea
    .long long_mode_start
    .short 0x08

    .code64
long_mode_start:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    lea rsp, [rip + boot_stack_top]
    mov edi, edi
    mov esi, esi
    xor ebp, ebp
    call kernel_entry
3:
    cli
    hlt
    jmp 3b

    .section .rodata
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss
    .balign 4096
    .global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4
    .global boot_stack_guard
boot_stack_guard:
    .skip 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip {stack_size}
boot_stack_top:
    "#,
    pvh = const PROTOCOL_PVH,
    stack_size = const BOOT_STACK_SIZE,
);

extern "C" {
    static boot_stack_guard: u8;
    static boot_stack_bottom: u8;
}

/// Address range of the boot stack's guard page and of the stack itself.
pub fn boot_stack_layout() -> (u64, u64) {
    (
        core::ptr::addr_of!(boot_stack_guard) as u64,
        core::ptr::addr_of!(boot_stack_bottom) as u64,
    )
}

/// Defines `kernel_entry`, which the long-mode entry calls with the loader's magic and the boot
/// information's address, as a call of `$main(protocol, info_paddr)`. The crate root invokes it
/// with its boot sequence, so this layer never names anything above it.
#[macro_export]
macro_rules! kernel_entry {
    ($main:path) => {
        // `no_mangle` gives the assembly of `arch::boot` its symbol: an unsafe attribute.
        #[allow(unsafe_code)]
        #[no_mangle]
        extern "C" fn kernel_entry(protocol: u32, info_paddr: u32) -> ! {
            $main(protocol, info_paddr)
        }
    };
}
