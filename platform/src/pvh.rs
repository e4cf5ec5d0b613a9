//! PVH entry point (Xen `hvm_start_info` ABI, as used by QEMU and Cloud
//! Hypervisor): the VMM starts us in 32-bit protected mode, paging off, with
//! `%ebx` holding the physical address of `hvm_start_info`.
//!
//! The assembly clears BSS, identity-maps the low 4 GiB with 2 MiB pages,
//! enables long mode and SSE (the UEFI x64 ABI lets applications use SSE,
//! UEFI 2.10 §2.3.4), and calls `rust_start(start_info)` on a small boot stack.

use core::arch::global_asm;

global_asm!(
    r#"
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4                 /* name size: "Xen\0" */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_entry32
    .balign 4
    .popsection

    .pushsection .bss.boot_page_tables, "aw", @nobits
    .balign 4096
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4 * 4096
    .balign 16
boot_stack_bottom:
    .skip 64 * 1024
    .globl boot_stack_top
boot_stack_top:
    .popsection

    .pushsection .rodata.boot_gdt, "a"
    .balign 16
boot_gdt:
    .quad 0                     /* null */
    .quad 0x00af9b000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf93000000ffff    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt
    .popsection

    .pushsection .text.pvh_entry32, "ax"
    .code32
    .globl pvh_entry32
pvh_entry32:
    cli
    cld
    movl %ebx, %esi

    /* Clear BSS; the boot stack and page tables live there too. */
    movl $bss_start, %edi
    movl $bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT; PDPT[0..4] -> PD; PD: 2048 2 MiB pages = 4 GiB. */
    movl $boot_pdpt, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    movl $boot_pdpt, %edi
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl $4, %ecx
1:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 1b
    movl $boot_pd, %edi
    movl $0x83, %eax            /* present, writable, 2 MiB */
    movl $2048, %ecx
2:  movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 2b

    movl $boot_pml4, %eax
    movl %eax, %cr3
    /* CR4: PAE, OSFXSR, OSXMMEXCPT */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    /* EFER.LME */
    movl $0xC0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    /* CR0: PG, WP, NE, MP, PE; clear EM and TS */
    movl %cr0, %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    orl $((1 << 31) | (1 << 16) | (1 << 5) | (1 << 1) | 1), %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmpl $0x08, $3f

    .code64
3:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    leaq boot_stack_top(%rip), %rsp
    fninit
    movl %esi, %edi
    call rust_start
4:  hlt
    jmp 4b
    .popsection
    "#,
    options(att_syntax)
);
