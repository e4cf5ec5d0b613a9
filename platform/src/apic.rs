//! The local APIC timer as an acknowledge-only tick (Intel SDM vol. 3
//! §11.5.4). Its handler only signals EOI and touches no firmware state, so
//! the firmware stays free of reentrancy: timers are still polled from the
//! TSC (`efi::events`). The tick exists to end a `hlt`: applications such
//! as iPXE idle in a bare `hlt`, expecting the timer interrupt every edk2
//! firmware takes below TPL_HIGH_LEVEL (UEFI 2.10 §7.1).

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::mmio::Mmio;
use x86_64::registers::model_specific::{ApicBase, ApicBaseFlags, Msr};

/// The tick's vector: the first one above the exceptions. The PICs are
/// masked (`interrupts::init`), so nothing else raises it.
pub const TICK_VECTOR: u8 = 0x20;
/// The spurious-interrupt vector (SDM vol. 3 §11.9): its gate is the bare
/// `iretq` of vectors 32-255, right because a spurious interrupt must not
/// be acknowledged.
const SPURIOUS_VECTOR: u32 = 0xff;

/// Local APIC registers by xAPIC MMIO offset; the x2APIC MSR is
/// 0x800 + offset / 16 (SDM vol. 3 §11.12.1.2, Table 11-6).
#[derive(Clone, Copy)]
#[repr(u32)]
enum Register {
    Eoi = 0xb0,
    SpuriousVector = 0xf0,
    LvtTimer = 0x320,
    InitialCount = 0x380,
    DivideConfig = 0x3e0,
}

/// SVR bit 8: APIC software enable (SDM vol. 3 §11.9).
const SOFTWARE_ENABLE: u32 = 1 << 8;
/// LVT timer bits (SDM vol. 3 §11.5.1, Figure 11-8).
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// Divide configuration: divide by 16 (SDM vol. 3 §11.5.4, Figure 11-10).
const DIVIDE_BY_16: u32 = 0b0011;
/// The tick period.
const PERIOD_MS: u64 = 16;
/// The APIC timer's input clock when the VMM does not report it: QEMU's
/// emulated APIC and KVM's in-kernel one both count at 1 GHz (KVM's
/// APIC_BUS_CYCLE_NS default of 1). Wrong by 10x on other hardware the tick
/// only fires less or more often, which nothing depends on.
const DEFAULT_BUS_KHZ: u64 = 1_000_000;

/// The xAPIC EOI register's address, or 0 in x2APIC mode; read by the tick
/// handler below.
#[unsafe(no_mangle)]
static TICK_EOI_ADDRESS: AtomicU64 = AtomicU64::new(0);
static RUNNING: AtomicBool = AtomicBool::new(false);

// The tick handler: EOI (SDM vol. 3 §11.8.5) and nothing else. It saves the
// registers it uses; it touches no memory but the EOI register, no flags the
// interrupted code could see (iretq restores RFLAGS) and no SSE state.
global_asm!(
    r#"
    .pushsection .text.exception_stubs, "ax"
    .globl tick_interrupt
tick_interrupt:
    push rax
    push rcx
    push rdx
    mov rax, qword ptr [rip + TICK_EOI_ADDRESS]
    test rax, rax
    jz 1f
    mov dword ptr [rax], 0
    jmp 2f
1:  mov ecx, 0x80b
    xor eax, eax
    xor edx, edx
    wrmsr
2:  pop rdx
    pop rcx
    pop rax
    iretq
    .popsection
    "#
);

unsafe extern "C" {
    fn tick_interrupt();
}

/// The address of the tick handler, for the IDT gate of [`TICK_VECTOR`].
pub fn tick_handler() -> u64 {
    tick_interrupt as *const () as u64
}

/// The local APIC in the mode firmware found it.
enum Apic {
    X(Mmio),
    X2,
}

impl Apic {
    /// The BSP's local APIC, globally enabled; `None` without one.
    fn get() -> Option<Apic> {
        const CPUID_APIC: u32 = 1 << 9;
        if core::arch::x86_64::__cpuid(1).edx & CPUID_APIC == 0 {
            return None;
        }
        let (frame, mut flags) = ApicBase::read();
        if !flags.contains(ApicBaseFlags::LAPIC_ENABLE) {
            flags.insert(ApicBaseFlags::LAPIC_ENABLE);
            // SAFETY: the base stays where it is; setting the global enable
            // (SDM vol. 3 §11.4.3) only makes the APIC answer at that base.
            unsafe { ApicBase::write(frame, flags) };
        }
        if flags.contains(ApicBaseFlags::X2APIC_ENABLE) {
            return Some(Apic::X2);
        }
        let base = frame.start_address().as_u64();
        crate::paging::map_device_memory(base, 4096);
        // SAFETY: IA32_APIC_BASE names the xAPIC's 4 KiB register page (SDM
        // vol. 3 §11.4.4), identity mapped as device memory above (the low
        // 4 GiB, where it always is on a VM, is mapped from boot).
        Some(Apic::X(unsafe { Mmio::new(base, 4096) }))
    }

    fn read(&self, register: Register) -> u32 {
        match self {
            Apic::X(mmio) => mmio.read(register as u64),
            // SAFETY: reading an x2APIC register MSR in x2APIC mode has no
            // side effect (none of those read here has one).
            Apic::X2 => unsafe { Msr::new(0x800 + (register as u32 >> 4)).read() as u32 },
        }
    }

    fn write(&self, register: Register, value: u32) {
        match self {
            Apic::X(mmio) => mmio.write(register as u64, value),
            // SAFETY: the register's x2APIC MSR; the values written are the
            // xAPIC ones, valid in both modes (SDM vol. 3 §11.12.1.2).
            Apic::X2 => unsafe { Msr::new(0x800 + (register as u32 >> 4)).write(u64::from(value)) },
        }
    }
}

/// The initial count for a `PERIOD_MS` tick after the divide by 16: the
/// APIC bus frequency from the hypervisor timing leaf (VMware's
/// 0x40000010 EBX, which QEMU offers with `vmware-cpuid-freq`) when it
/// reports a plausible one (1 MHz to 10 GHz), else 1 GHz. A fixed count,
/// not a calibration: it costs no boot time, and the period need not be
/// exact.
fn initial_count() -> u32 {
    use core::arch::x86_64::__cpuid;
    const HYPERVISOR_PRESENT: u32 = 1 << 31;
    const TIMING_LEAF: u32 = 0x4000_0010;
    let reported =
        if __cpuid(1).ecx & HYPERVISOR_PRESENT != 0 && __cpuid(0x4000_0000).eax >= TIMING_LEAF {
            u64::from(__cpuid(TIMING_LEAF).ebx)
        } else {
            0
        };
    let khz = if (1_000..=10_000_000).contains(&reported) {
        reported
    } else {
        DEFAULT_BUS_KHZ
    };
    // At most 10^7 * 16 / 16: fits a u32.
    u32::try_from(khz * PERIOD_MS / 16).unwrap_or(u32::MAX)
}

/// Starts the periodic tick on [`TICK_VECTOR`] (idempotent). Interrupts
/// stay as they are: the caller sets IF.
pub fn start_tick() {
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let Some(apic) = Apic::get() else {
        log::warn!("apic: no local APIC, no timer tick");
        return;
    };
    if let Apic::X(mmio) = &apic {
        TICK_EOI_ADDRESS.store(mmio.base() + Register::Eoi as u64, Ordering::Release);
    }
    let svr = apic.read(Register::SpuriousVector);
    apic.write(
        Register::SpuriousVector,
        (svr & !0xff) | SOFTWARE_ENABLE | SPURIOUS_VECTOR,
    );
    apic.write(Register::DivideConfig, DIVIDE_BY_16);
    apic.write(Register::LvtTimer, LVT_PERIODIC | u32::from(TICK_VECTOR));
    // Writing the initial count starts the count-down (SDM vol. 3 §11.5.4).
    let count = initial_count();
    apic.write(Register::InitialCount, count);
    log::debug!("apic: {PERIOD_MS} ms tick, initial count {count}");
}

/// Sets (`sti`) or clears (`cli`) RFLAGS.IF on this CPU.
pub fn set_interrupt_flag(on: bool) {
    if on {
        x86_64::instructions::interrupts::enable();
    } else {
        x86_64::instructions::interrupts::disable();
    }
}

/// Masks and stops the tick (initial count 0, SDM vol. 3 §11.5.4) and
/// leaves interrupts off, so the OS finds no tick running (a tick already
/// pending is `interrupts::drain_pending`'s); the
/// APIC stays software-enabled, as edk2 leaves it. Does nothing unless
/// [`start_tick`] ran: after ExitBootServices the page tables may be the
/// OS's, without the xAPIC page.
pub fn stop_tick() {
    if !RUNNING.swap(false, Ordering::AcqRel) {
        return;
    }
    x86_64::instructions::interrupts::disable();
    if let Some(apic) = Apic::get() {
        apic.write(Register::LvtTimer, LVT_MASKED | u32::from(TICK_VECTOR));
        apic.write(Register::InitialCount, 0);
    }
}
