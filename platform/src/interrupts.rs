//! GDT with a TSS, and an IDT whose exception handlers print a register dump
//! on serial and halt: a fault must never become a silent triple fault. The
//! double-fault, NMI, machine-check and page-fault handlers run on their own
//! stack (IST1) so a stack overflow into a guard page is still reported.

use crate::serial::Serial;
use core::arch::{asm, global_asm};
use core::fmt::Write;
use x86_64::instructions::port::PortWriteOnly;

#[repr(C, packed(4))]
struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

/// The IST1 stack with a page below it that `protect_fault_stack` unmaps, so
/// an overflow of the fault stack itself faults instead of corrupting .bss.
#[repr(C, align(4096))]
struct FaultStack {
    guard: [u8; 4096],
    stack: [u8; 16 * 1024],
}

static mut FAULT_STACK: FaultStack = FaultStack {
    guard: [0; 4096],
    stack: [0; 16 * 1024],
};
static mut TSS: Tss = Tss {
    reserved0: 0,
    rsp: [0; 3],
    reserved1: 0,
    ist: [0; 7],
    reserved2: 0,
    reserved3: 0,
    iomap_base: core::mem::size_of::<Tss>() as u16,
};
static mut GDT: [u64; 5] = [
    0,
    0x00af_9b00_0000_ffff, // 0x08: 64-bit code
    0x00cf_9300_0000_ffff, // 0x10: data
    0,                     // 0x18: TSS (low), filled in at init
    0,                     // 0x20: TSS (high)
];

#[repr(C)]
#[derive(Clone, Copy)]
struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

static mut IDT: [IdtEntry; 256] = [IdtEntry {
    offset_low: 0,
    selector: 0,
    ist: 0,
    flags: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
}; 256];

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Registers saved by the common exception stub, lowest address first.
#[repr(C)]
pub struct ExceptionFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

// One stub per vector: push a zero error code where the CPU does not, push
// the vector, save the general registers and call `exception_handler`.
macro_rules! stubs {
    ($($vector:literal $has_error:literal),* $(,)?) => {
        global_asm!(
            $(
                concat!(".pushsection .text.exception_stubs, \"ax\"\n",
                        ".globl exception_stub_", $vector, "\n",
                        "exception_stub_", $vector, ":\n",
                        ".if ", $has_error, " == 0\n push 0\n .endif\n",
                        "push ", $vector, "\n",
                        "jmp exception_common\n",
                        ".popsection\n"),
            )*
        );
    };
}

stubs!(
    0 0, 1 0, 2 0, 3 0, 4 0, 5 0, 6 0, 7 0, 8 1, 9 0, 10 1, 11 1, 12 1, 13 1, 14 1, 15 0,
    16 0, 17 1, 18 0, 19 0, 20 0, 21 1, 22 0, 23 0, 24 0, 25 0, 26 0, 27 0, 28 0, 29 1, 30 1, 31 0
);

global_asm!(
    r#"
    .pushsection .text.exception_stubs, "ax"
exception_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    and rsp, -16
    call exception_handler
2:  cli
    hlt
    jmp 2b

    /* Vectors 32-255: nothing should raise them (the PIC is masked and
       interrupts stay off); ignore a stray one. */
    .globl spurious_interrupt
spurious_interrupt:
    iretq
    .popsection
    "#
);

unsafe extern "C" {
    fn spurious_interrupt();
}

const VECTOR_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor overrun",
    "invalid TSS",
    "segment not present",
    "stack fault",
    "general protection",
    "page fault",
    "reserved",
    "x87 floating point",
    "alignment check",
    "machine check",
    "SIMD floating point",
    "virtualization",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security",
    "reserved",
];

/// What a page-fault error code says happened (Intel SDM vol. 3 §4.7).
fn page_fault_cause(error_code: u64) -> &'static str {
    const PRESENT: u64 = 1 << 0;
    const WRITE: u64 = 1 << 1;
    const FETCH: u64 = 1 << 4;
    match (
        error_code & PRESENT != 0,
        error_code & WRITE != 0,
        error_code & FETCH != 0,
    ) {
        (false, _, _) if error_code & FETCH != 0 => "instruction fetch from an unmapped page",
        (false, true, _) => "write to an unmapped page",
        (false, false, _) => "read from an unmapped page",
        (true, _, true) => "instruction fetch from a no-execute page",
        (true, true, false) => "write to a read-only page",
        (true, false, false) => "read denied (reserved bit set)",
    }
}

/// Names the code that faulted (e.g. a loaded EFI image); set by the EFI layer.
type FaultLocator = fn(u64, &mut dyn Write);
static FAULT_LOCATOR: crate::sync::Global<Option<FaultLocator>> = crate::sync::Global::new(None);

pub fn set_fault_locator(locator: FaultLocator) {
    FAULT_LOCATOR.with(|l| *l = Some(locator));
}

#[unsafe(no_mangle)]
extern "C" fn exception_handler(frame: &ExceptionFrame) -> ! {
    // Raw: a non-canonical faulting address must be reported, not rejected.
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    let name = VECTOR_NAMES
        .get(frame.vector as usize)
        .copied()
        .unwrap_or("unknown");
    let w = &mut Serial;
    let _ = writeln!(
        w,
        "\n*** CPU exception {} ({name}), error code {:#x}",
        frame.vector, frame.error_code
    );
    let _ = writeln!(
        w,
        "rip {:#018x} cs {:#x} rflags {:#x} rsp {:#018x} ss {:#x}",
        frame.rip, frame.cs, frame.rflags, frame.rsp, frame.ss
    );
    if frame.vector == 14 {
        let _ = writeln!(
            w,
            "faulting address (cr2) {cr2:#018x}: {}",
            page_fault_cause(frame.error_code)
        );
    }
    let _ = writeln!(
        w,
        "rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}",
        frame.rax, frame.rbx, frame.rcx, frame.rdx
    );
    let _ = writeln!(
        w,
        "rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}",
        frame.rsi, frame.rdi, frame.rbp, frame.r8
    );
    let _ = writeln!(
        w,
        "r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}",
        frame.r9, frame.r10, frame.r11, frame.r12
    );
    let _ = writeln!(
        w,
        "r13 {:#018x} r14 {:#018x} r15 {:#018x}",
        frame.r13, frame.r14, frame.r15
    );
    if let Some(Some(locate)) = FAULT_LOCATOR.try_with(|l| *l) {
        locate(frame.rip, w);
    }
    let _ = writeln!(w, "*** system halted");
    loop {
        // SAFETY: halting with interrupts off stops this CPU for good.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) };
    }
}

fn set_gate(vector: usize, handler: u64, ist: u8) {
    let entry = IdtEntry {
        offset_low: handler as u16,
        selector: 0x08,
        ist,
        flags: 0x8e, // present, DPL 0, 64-bit interrupt gate
        offset_mid: (handler >> 16) as u16,
        offset_high: (handler >> 32) as u32,
        reserved: 0,
    };
    // SAFETY: single-threaded init; IDT is only written here, before `lidt`
    // and with interrupts off.
    unsafe { (*core::ptr::addr_of_mut!(IDT))[vector] = entry };
}

macro_rules! stub_addresses {
    ($($vector:literal),*) => {{
        let mut table = [0u64; 32];
        $(
            // SAFETY: reading the address of a symbol defined in global_asm.
            unsafe {
                asm!(concat!("lea {}, [rip + exception_stub_", $vector, "]"), out(reg) table[$vector], options(nomem, nostack));
            }
        )*
        table
    }};
}

/// Unmaps the guard page under the fault (IST1) stack; call once the
/// firmware's page tables are up.
pub fn protect_fault_stack() {
    let guard = core::ptr::addr_of!(FAULT_STACK) as u64;
    crate::paging::set_access(guard, 4096, crate::paging::Access::NONE);
}

/// Loads the firmware GDT, TSS and IDT and masks the legacy PICs.
pub fn init() {
    let stubs = stub_addresses!(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31
    );
    for (vector, &stub) in stubs.iter().enumerate() {
        let ist = if matches!(vector, 2 | 8 | 14 | 18) {
            1
        } else {
            0
        };
        set_gate(vector, stub, ist);
    }
    for vector in 32..256 {
        set_gate(vector, spurious_interrupt as *const () as u64, 0);
    }

    // SAFETY: single-threaded init of statics that are only read by the CPU
    // afterwards; the selectors loaded match the descriptors written.
    unsafe {
        let stack_top =
            core::ptr::addr_of!(FAULT_STACK) as u64 + core::mem::size_of::<FaultStack>() as u64;
        (*core::ptr::addr_of_mut!(TSS)).ist[0] = stack_top;
        let tss = core::ptr::addr_of!(TSS) as u64;
        let limit = core::mem::size_of::<Tss>() as u64 - 1;
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt[3] = (limit & 0xffff)
            | ((tss & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((tss >> 24) & 0xff) << 56);
        gdt[4] = tss >> 32;

        let gdt_ptr = DescriptorPointer {
            limit: (core::mem::size_of::<[u64; 5]>() - 1) as u16,
            base: gdt.as_ptr() as u64,
        };
        asm!("lgdt [{}]", in(reg) &gdt_ptr, options(readonly, nostack));
        asm!(
            "push 0x08",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov {tmp:e}, 0x10",
            "mov ds, {tmp:e}",
            "mov es, {tmp:e}",
            "mov ss, {tmp:e}",
            tmp = out(reg) _,
        );
        asm!("ltr {0:x}", in(reg) 0x18u16, options(nostack));
        let idt_ptr = DescriptorPointer {
            limit: (core::mem::size_of::<[IdtEntry; 256]>() - 1) as u16,
            base: core::ptr::addr_of!(IDT) as u64,
        };
        asm!("lidt [{}]", in(reg) &idt_ptr, options(readonly, nostack));
    }

    // Mask both 8259 PICs: SeaBIOS leaves IRQ0 mapped onto vector 8.
    // SAFETY: 0x21/0xA1 are the 8259 data ports; writing the interrupt mask
    // only stops IRQs, and no memory is touched.
    unsafe {
        PortWriteOnly::<u8>::new(0x21).write(0xff);
        PortWriteOnly::<u8>::new(0xa1).write(0xff);
    }
}
