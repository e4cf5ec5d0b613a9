//! GDT with a TSS, and an IDT whose exception handlers print a register dump
//! on serial and halt: a fault must never become a silent triple fault. The
//! double-fault, NMI, machine-check and page-fault handlers run on their own
//! stack (IST1) so a stack overflow into a guard page is still reported.

use crate::serial::Serial;
use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::mem::MaybeUninit;
use core::ptr::{addr_of, addr_of_mut};
use x86_64::VirtAddr;
use x86_64::instructions::port::PortWriteOnly;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::idt::{Entry, InterruptDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

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
static mut TSS: TaskStateSegment = TaskStateSegment::new();
/// Null, code (0x08), data (0x10) and the TSS (0x18, two slots).
static mut GDT: GlobalDescriptorTable<5> = GlobalDescriptorTable::empty();
/// Written by `fill_idt` at run time: `InterruptDescriptorTable::new()` is
/// not all zeroes, so a constant initialiser would put 4 KiB in the image's
/// .data instead of .bss.
static mut IDT: MaybeUninit<InterruptDescriptorTable> = MaybeUninit::zeroed();

/// The selectors `init` installs. The IDT's gates and `loaders`' Linux boot
/// GDT (which keeps 0x08 as code for the firmware IDT) depend on these
/// values, so `init` checks the GDT hands out exactly them.
const KERNEL_CODE: SegmentSelector = SegmentSelector(0x08);
const KERNEL_DATA: SegmentSelector = SegmentSelector(0x10);
const TSS_SELECTOR: SegmentSelector = SegmentSelector(0x18);

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

// The vectors the IDT routes (see `fill_idt`), with whether the CPU pushes
// an error code (SDM vol. 3 §6.15).
stubs!(
    0 0, 1 0, 2 0, 3 0, 4 0, 5 0, 6 0, 7 0, 8 1, 10 1, 11 1, 12 1, 13 1, 14 1, 16 0, 17 1,
    18 0, 19 0, 20 0, 21 1, 28 0, 29 1, 30 1
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

    /* Vectors 32-255 but the tick's: nothing should raise them (the PIC
       is masked); ignore a stray one. The APIC's spurious vector (0xff)
       must not be acknowledged (SDM vol. 3 §11.9), so no EOI here. */
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

/// Points `entry` at one of our assembly stubs as a DPL-0 interrupt gate
/// on the firmware code segment, on the IST1 stack if `own_stack`.
///
/// The stubs are not `extern "x86-interrupt"` functions: they save all
/// registers into an `ExceptionFrame` and never return (except the spurious
/// one, a bare `iretq`), so the gate is set by address.
///
/// # Safety
/// `handler` must be the address of one of those stubs, valid for the
/// vector `entry` belongs to, and the IDT must not be in use by the CPU.
unsafe fn set_gate<F>(entry: &mut Entry<F>, handler: u64, own_stack: bool) {
    // SAFETY: the caller's contract.
    let options = unsafe { entry.set_handler_addr(VirtAddr::new(handler)) };
    // SAFETY: KERNEL_CODE is the 64-bit code descriptor `init` loads.
    unsafe { options.set_code_selector(KERNEL_CODE) };
    if own_stack {
        // SAFETY: IST1 (index 0 here) is FAULT_STACK, set up in the TSS by
        // `init`; only these fatal vectors use it and they never return.
        unsafe { options.set_stack_index(0) };
    }
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

/// Fills the IDT: the 32 exception vectors go to their stubs (NMI, #DF,
/// #PF and #MC on IST1), the APIC tick's to `apic::tick_handler`, every
/// other vector to `spurious_interrupt`.
///
/// The crate keeps the reserved vectors (9, 15, 22-27, 31) private, so they
/// stay not-present: a CPU never raises them, and if one were, the #GP it
/// turns into is reported with the vector in its error code.
///
/// # Safety
/// Single-threaded init before `lidt`: nothing else refers to `IDT`.
unsafe fn fill_idt() {
    let stubs = stub_addresses!(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 28, 29, 30
    );
    // SAFETY: the caller's contract.
    let idt = unsafe { (*addr_of_mut!(IDT)).write(InterruptDescriptorTable::new()) };
    // SAFETY: each entry gets the stub generated for its own vector (the
    // stubs know which vectors push an error code).
    unsafe {
        set_gate(&mut idt.divide_error, stubs[0], false);
        set_gate(&mut idt.debug, stubs[1], false);
        set_gate(&mut idt.non_maskable_interrupt, stubs[2], true);
        set_gate(&mut idt.breakpoint, stubs[3], false);
        set_gate(&mut idt.overflow, stubs[4], false);
        set_gate(&mut idt.bound_range_exceeded, stubs[5], false);
        set_gate(&mut idt.invalid_opcode, stubs[6], false);
        set_gate(&mut idt.device_not_available, stubs[7], false);
        set_gate(&mut idt.double_fault, stubs[8], true);
        set_gate(&mut idt.invalid_tss, stubs[10], false);
        set_gate(&mut idt.segment_not_present, stubs[11], false);
        set_gate(&mut idt.stack_segment_fault, stubs[12], false);
        set_gate(&mut idt.general_protection_fault, stubs[13], false);
        set_gate(&mut idt.page_fault, stubs[14], true);
        set_gate(&mut idt.x87_floating_point, stubs[16], false);
        set_gate(&mut idt.alignment_check, stubs[17], false);
        set_gate(&mut idt.machine_check, stubs[18], true);
        set_gate(&mut idt.simd_floating_point, stubs[19], false);
        set_gate(&mut idt.virtualization, stubs[20], false);
        set_gate(&mut idt.cp_protection_exception, stubs[21], false);
        set_gate(&mut idt.hv_injection_exception, stubs[28], false);
        set_gate(&mut idt.vmm_communication_exception, stubs[29], false);
        set_gate(&mut idt.security_exception, stubs[30], false);
    }
    let spurious = spurious_interrupt as *const () as u64;
    for entry in idt.slice_mut(32..=255) {
        // SAFETY: `spurious_interrupt` is a bare `iretq`, right for any
        // vector without an error code, which all of 32-255 are.
        unsafe { set_gate(entry, spurious, false) };
    }
    // SAFETY: the tick handler saves what it uses, signals EOI and returns
    // with `iretq`; the vector pushes no error code.
    unsafe {
        set_gate(
            &mut idt[crate::apic::TICK_VECTOR],
            crate::apic::tick_handler(),
            false,
        )
    };
}

/// Lets an interrupt the local APIC already accepted be delivered through
/// the firmware IDT, then disables interrupts again; for ExitBootServices,
/// after `apic::stop_tick`. Does nothing if the IDT loaded is not ours (the OS
/// may have installed its own before calling ExitBootServices).
pub fn drain_pending() {
    let ours = addr_of!(IDT) as u64;
    if x86_64::instructions::tables::sidt().base.as_u64() != ours {
        return;
    }
    // SAFETY: our IDT routes every vector from 32 up to a handler that
    // returns; `sti` takes effect after the `nop` (SDM vol. 2B, STI), so a
    // pending interrupt is taken there and `cli` ends the window.
    unsafe { asm!("sti", "nop", "cli", options(nomem, nostack)) };
}

/// Loads the firmware GDT, TSS and IDT and masks the legacy PICs.
pub fn init() {
    // SAFETY: single-threaded init of statics that the CPU only reads
    // afterwards; nothing else refers to them.
    unsafe {
        let stack_top = addr_of!(FAULT_STACK) as u64 + core::mem::size_of::<FaultStack>() as u64;
        (*addr_of_mut!(TSS)).interrupt_stack_table[0] = VirtAddr::new(stack_top);
        let gdt = &mut *addr_of_mut!(GDT);
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(&*addr_of!(TSS)));
        assert!(
            code == KERNEL_CODE && data == KERNEL_DATA && tss == TSS_SELECTOR,
            "GDT selectors moved"
        );
        fill_idt();
    }
    // SAFETY: the GDT is a static, complete and never changed again; the
    // selectors loaded name its code, data and TSS descriptors (SDM vol. 3
    // §3.4.5, §7.2.3), so execution continues in the same flat segments.
    unsafe {
        (*addr_of!(GDT)).load_unsafe();
        CS::set_reg(KERNEL_CODE);
        DS::set_reg(KERNEL_DATA);
        ES::set_reg(KERNEL_DATA);
        SS::set_reg(KERNEL_DATA);
        load_tss(TSS_SELECTOR);
    }
    // SAFETY: the IDT is a static that was completely filled above and is
    // never changed again; its gates name the code segment just loaded.
    unsafe { (*addr_of!(IDT)).assume_init_ref().load_unsafe() };

    // Mask both 8259 PICs: SeaBIOS leaves IRQ0 mapped onto vector 8.
    // SAFETY: 0x21/0xA1 are the 8259 data ports; writing the interrupt mask
    // only stops IRQs, and no memory is touched.
    unsafe {
        PortWriteOnly::<u8>::new(0x21).write(0xff);
        PortWriteOnly::<u8>::new(0xa1).write(0xff);
    }
}
