//! vmfw: a UEFI firmware for virtual machines, entered through PVH.
//!
//! The boot policy reads top to bottom in `boot`: bring up the platform,
//! build the UEFI environment over it, then hand over to the boot manager.
#![no_std]
#![no_main]

extern crate alloc;

mod panic;

use core::ffi::c_void;
use log::{debug, error, info, warn};
use platform::acpi::AcpiInfo;
use platform::boot_timing::{self, Phase};
use platform::call_arena::WithCallArena;
use platform::heap::{BootServicesPages, GrowingHeap};
use platform::memory::{self, MemoryType, PAGE_SIZE, Placement};
use platform::paging::{self, Access};
use platform::start_info::{MemmapType, PhysRead, StartInfo, StartInfoError};
use platform::{interrupts, logger, pci, serial, tsc};

/// The firmware heap grows from boot-services pages as needed
/// (platform::heap), so the firmware's footprint follows its use.
/// Inside `platform::call_arena::with_call_arena` (Secure Boot's
/// authenticated SetVariable, also after ExitBootServices) allocations come
/// from a static arena instead.
#[global_allocator]
static HEAP: WithCallArena<GrowingHeap<BootServicesPages>> = WithCallArena {
    boot: GrowingHeap::new(BootServicesPages),
};

/// Variable store backing buffer: in the image, so runtime services keep it
/// after ExitBootServices.
static mut VARIABLE_STORE: [u8; VARIABLE_STORE_SIZE] = [0; VARIABLE_STORE_SIZE];
const VARIABLE_STORE_SIZE: usize = 128 * 1024;
/// EFI_RT_PROPERTIES_TABLE, installed as a configuration table.
static mut RT_PROPERTIES: core::mem::MaybeUninit<efi::spec_gaps::RtPropertiesTable> =
    core::mem::MaybeUninit::uninit();

const STACK_SIZE: u64 = 256 << 10;
const FOUR_GIB: u64 = 1 << 32;

unsafe extern "C" {
    static firmware_start: u8;
    static text_start: u8;
    static text_end: u8;
    static firmware_end: u8;
}

fn symbol_address(symbol: &u8) -> u64 {
    symbol as *const u8 as u64
}

/// Reads guest memory below 4 GiB, which the boot page tables identity-map.
struct LowMemory;

impl PhysRead for LowMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), StartInfoError> {
        let len = buf.len() as u64;
        if addr == 0 || addr.checked_add(len).is_none_or(|end| end > FOUR_GIB) {
            return Err(StartInfoError::Unreadable { addr, len });
        }
        // SAFETY: the range is non-null and below 4 GiB, all of which the boot
        // page tables map; reading RAM or device memory there cannot fault.
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}

/// PVH entry from `platform::pvh`, on the boot stack.
#[unsafe(no_mangle)]
extern "C" fn rust_start(start_info_addr: u32) -> ! {
    serial::init();
    boot_timing::start();
    interrupts::init();

    let start_info = match StartInfo::parse(&LowMemory, start_info_addr as u64) {
        Ok(info) => info,
        Err(e) => halt_with(format_args!("cannot boot: {e}")),
    };
    let cmdline = accepted_cmdline(&start_info);
    logger::init(logger::level_from_cmdline(cmdline));
    info!(
        "vmfw {}: UEFI firmware for virtual machines",
        env!("CARGO_PKG_VERSION")
    );
    if start_info.cmdline_refused() {
        error!(
            "firmware command line longer than {} bytes: ignored, none of its words take effect",
            platform::start_info::MAX_CMDLINE
        );
    }
    if let Err(e) = platform::cmdline::validate(start_info.cmdline()) {
        error!("firmware command line refused: {e}; none of its words take effect");
    }

    let ram_end = build_memory_map(&start_info);
    reserve_variable_journal();
    panic::take_previous_note();
    panic::read_cmdline(cmdline);
    platform::forced_failure::init(cmdline);
    paging::init(ram_end);
    init_heap();
    protect_firmware();
    boot_timing::mark(Phase::PLATFORM);

    let stack = new_stack();
    // SAFETY: `stack` is the top of a fresh, mapped, 16-byte aligned stack that
    // nothing else uses; `boot` never returns, so the old stack is abandoned.
    unsafe {
        core::arch::asm!(
            "mov rsp, {stack}",
            "call {boot}",
            "ud2",
            stack = in(reg) stack,
            boot = sym boot_on_main_stack,
            in("rdi") &start_info as *const StartInfo,
            options(noreturn)
        )
    }
}

extern "C" fn boot_on_main_stack(start_info: *const StartInfo) -> ! {
    // SAFETY: `rust_start` passes a pointer to its own local, which stays valid
    // because its frame is never popped (it jumped here and cannot return).
    let start_info = unsafe { &*start_info };
    boot(start_info)
}

/// The firmware command line the firmware acts on: the VMM's, or nothing
/// when it is refused. One grammar for the whole line (platform::cmdline):
/// a line with an unclosed quote is refused whole, like one that is too
/// long, so no word meant for the kernel is taken as a firmware option.
fn accepted_cmdline(start_info: &StartInfo) -> &str {
    match platform::cmdline::validate(start_info.cmdline()) {
        Ok(()) => start_info.cmdline(),
        Err(_) => "",
    }
}

/// The boot policy.
fn boot(start_info: &StartInfo) -> ! {
    let cmdline = accepted_cmdline(start_info);
    match start_info.rsdp {
        Some(rsdp) => info!("RSDP at {rsdp:#x}"),
        None => info!("RSDP not given by the VMM"),
    }
    let acpi = AcpiInfo::discover(start_info.rsdp)
        .map_err(|e| error!("ACPI tables unusable: {e}"))
        .ok();
    tsc::init_with_pm_timer(acpi.as_ref().and_then(|a| a.pm_timer));
    // ACPI discovery was the last reader of the BIOS data area (the EBDA
    // pointer at 0x40E): from here on a null pointer dereference faults.
    paging::set_access(0, PAGE_SIZE, Access::NONE);
    boot_timing::mark(Phase::ACPI);
    // The TPM before anything is measured: TCG PC Client PFP §3.3.2 wants
    // it started (Startup, self-test) by the first firmware code that runs.
    platform::tpm::discover_and_start(acpi.as_ref());

    efi_init(acpi.as_ref());
    measured_boot_init();
    boot_timing::mark(Phase::EFI_CORE);
    storage_init(acpi.as_ref(), cmdline);
    boot_timing::mark(Phase::FILE_SYSTEM);
    // From here on the loaders reach boot services through the firmware's
    // system table (`loaders::services`); `boot` never returns, so this
    // stays entered.
    let _firmware_services = loaders::boot_manager::enter_firmware_services()
        .map_err(|status| error!("boot services unusable for the loaders: {status:?}"));
    // Persisted non-volatile variables (BootOrder...) before the boot manager.
    let persist_variables = loaders::nv_store::init(VARIABLE_STORE_SIZE);
    // What the previous boot's OS changed after ExitBootServices, from the
    // journal in reserved RAM, reaches the disk now (UEFI 2.10 §8.2).
    loaders::nv_journal::apply(persist_variables);
    install_secure_boot_keys(start_info);
    // TCG PFP §3.3.4.8: the policy the images will be checked against.
    efi::tcg2::measure_secure_boot_policy();
    wire_hooks(persist_variables);
    // Monotonic count, time zone, wakeup alarm (UEFI 2.10 §8.3, §8.5.2).
    efi::runtime::restore_persisted_state();

    loaders::boot_manager::run(cmdline);
    info!("no bootable device found");
    halt()
}

/// Builds the UEFI environment: tables, runtime services, configuration
/// tables, the console and the firmware's own image handle.
fn efi_init(acpi: Option<&AcpiInfo>) {
    efi::tables::init();
    // SAFETY: the buffer is handed out exactly once, here.
    let variables = unsafe {
        core::slice::from_raw_parts_mut((&raw mut VARIABLE_STORE).cast::<u8>(), VARIABLE_STORE_SIZE)
    };
    // SAFETY: `acpi` is what `boot` got from AcpiInfo::discover over the
    // tables at the RSDP the VMM put in the PVH start info, so its FADT
    // registers are this machine's.
    if let Err(e) = unsafe { efi::runtime::init(variables, acpi) } {
        error!("variable store unavailable: {e}");
    }

    if let Some(acpi) = acpi {
        let rsdp = acpi.rsdp_address as *mut c_void;
        let guid = if acpi.rsdp.revision >= 2 {
            efi::spec_gaps::ACPI_20_TABLE_GUID
        } else {
            efi::spec_gaps::ACPI_10_TABLE_GUID
        };
        let _ = efi::tables::set_configuration_table(guid, rsdp);
    }
    if let Some((address, entry)) = platform::smbios::log_system_info() {
        let guid = if entry.structure_count.is_none() {
            efi::spec_gaps::SMBIOS3_TABLE_GUID
        } else {
            efi::spec_gaps::SMBIOS_TABLE_GUID
        };
        let _ = efi::tables::set_configuration_table(guid, address as *mut c_void);
    }
    // SAFETY: written once here, before any EFI caller can read it.
    unsafe {
        (&raw mut RT_PROPERTIES)
            .cast::<efi::spec_gaps::RtPropertiesTable>()
            .write(efi::runtime::rt_properties())
    };
    let _ = efi::tables::set_configuration_table(
        efi::spec_gaps::RT_PROPERTIES_TABLE_GUID,
        (&raw mut RT_PROPERTIES).cast(),
    );

    let start = symbol_address(
        // SAFETY: linker-script symbol; only its address is taken.
        unsafe { &firmware_start },
    );
    // SAFETY: as above.
    let end = symbol_address(unsafe { &firmware_end });
    efi::image::init_firmware_image(start, end - start);
    if let Err(status) = efi::memory_attribute::install(start..end) {
        error!("memory attribute protocol unavailable: {status:?}");
    }
    efi::tables::install_memory_attributes_table(efi::memory_attributes::ImageLayout {
        start,
        // SAFETY: linker-script symbols; only their addresses are taken.
        text_start: symbol_address(unsafe { &text_start }),
        // SAFETY: as above.
        text_end: symbol_address(unsafe { &text_end }),
        end,
    });
    interrupts::set_fault_locator(efi::image::describe_address);
    match protocols::console::install() {
        Ok(console) => efi::tables::set_console(
            console.handle,
            console.con_in,
            console.handle,
            console.con_out,
        ),
        Err(status) => error!("console protocols unavailable: {status:?}"),
    }
    // Services the UEFI Shell and other tools locate (UEFI 2.10 §10.5,
    // §10.6, §19.2, §34), on one firmware handle.
    let tools = protocols::device_path_utilities::install(None)
        .and_then(|handle| protocols::device_path_text::install(Some(handle)))
        .and_then(|handle| protocols::unicode_collation::install(Some(handle)))
        .and_then(|handle| protocols::hii::install(Some(handle)));
    if let Err(status) = tools {
        error!("device path, collation and HII protocols unavailable: {status:?}");
    }
}

/// Measured boot (TCG EFI Protocol and PC Client PFP): the TPM the VMM
/// gives (`platform::tpm`: CRB or FIFO, from the ACPI TPM2 table), the
/// events an earlier stage measured (SeaBIOS, under QEMU `-kernel`, logs
/// them in the TPM2 table's log area), EFI_TCG2_PROTOCOL and the
/// firmware's own measurement. Without a TPM this is an ACPI lookup and a
/// register read.
fn measured_boot_init() {
    let Some(tpm) = platform::tpm::TPM.with(Option::take) else {
        return;
    };
    // The TPM2 table's log area: where SeaBIOS logged what it measured
    // before us (QEMU `-kernel`), and where Linux looks for the log first.
    let area = tpm.log_area().and_then(|area| {
        let len = area.min_len as usize;
        let end = area.start.checked_add(len as u64)?;
        if area.start == 0 || len == 0 || end > FOUR_GIB {
            warn!(
                "tpm: the TPM2 table's log area {:#x} is unusable",
                area.start
            );
            return None;
        }
        // SeaBIOS keeps the area out of the e820 map it hands on; should a
        // VMM leave it as RAM, it is taken now so nothing else gets it (a
        // failure means it is not free RAM: reserved already).
        let pages = (len as u64).div_ceil(PAGE_SIZE);
        if area.start.is_multiple_of(PAGE_SIZE) {
            let _ = memory::with_map(|m| {
                m.allocate(
                    Placement::Address(area.start),
                    MemoryType::ACPI_NON_VOLATILE,
                    pages,
                )
            });
        }
        // SAFETY: the VMM's TPM2 table names this range below 4 GiB (mapped
        // by the boot page tables) as the event log area, memory the memory
        // map does not hand out; from here on only the event log writes it.
        Some(unsafe { core::slice::from_raw_parts_mut(area.start as *mut u8, len) })
    });
    let earlier = area.as_deref().map(<[u8]>::to_vec);
    let previous = earlier.as_deref().and_then(|bytes| {
        tcg::log::import_previous(bytes)
            .map_err(|e| warn!("tpm: the earlier stage's event log is unreadable: {e:?}"))
            .ok()
            .flatten()
    });
    let events = previous.map(|p| p.events).unwrap_or_default();
    let tpm = efi::tcg2::PlatformTpm::new(tpm);
    if let Err(status) = efi::tcg2::init(alloc::boxed::Box::new(tpm), area, &events) {
        error!("tpm: EFI_TCG2_PROTOCOL unavailable: {status:?}");
        return;
    }
    // SAFETY: linker-script symbols; only their addresses are taken.
    let (start, end) = unsafe { (symbol_address(&firmware_start), symbol_address(&text_end)) };
    efi::tcg2::measure_firmware(start, end);
}

/// SetVirtualAddressMap's fix-ups: notify the VirtualAddressChange group,
/// then convert the system table's pointers.
fn virtual_address_change() {
    efi::events::virtual_address_change_notify();
    efi::tables::convert_to_virtual();
}

/// Finds the disks and publishes them with their partitions and file systems.
fn storage_init(acpi: Option<&AcpiInfo>, cmdline: &str) {
    let ecam = acpi.and_then(|a| a.mcfg).map(|m| {
        // SAFETY: the MCFG table names this window as the ECAM region.
        unsafe { pci::EcamConfigAccess::new(m.base, m.start_bus, m.end_bus) }
    });
    let access: &dyn pci::ConfigAccess = match &ecam {
        Some(ecam) => ecam,
        None => &pci::PortConfigAccess,
    };
    let mut devices = pci::enumerate(access);
    // From 3 GiB up to the ECAM window when it lies above (Cloud
    // Hypervisor's at 0xE800_0000), else up to the IOAPIC (QEMU q35 puts
    // ECAM at 0xB000_0000, below the window).
    let mem32_end = acpi
        .and_then(|a| a.mcfg)
        .map(|m| m.base)
        .filter(|&base| base > 0xc000_0000)
        .map_or(0xfec0_0000, |base| base.min(0xfec0_0000));
    let windows = pci::BarWindows {
        mem32: Some(pci::AddressWindow {
            base: 0xc000_0000,
            end: mem32_end,
        }),
        mem64: None,
        io: Some(pci::AddressWindow {
            base: 0xc000,
            end: 0x1_0000,
        }),
    };
    let reassign = platform::cmdline::has(cmdline, "pci", "reassign");
    let failures = if reassign {
        info!("pci: placing every bus 0 BAR anew (pci=reassign)");
        // SAFETY: `windows` is the MMIO hole below the IOAPIC and ECAM and
        // the legacy-free I/O range, which the VMMs keep for PCI BARs; no
        // driver has touched the devices yet.
        unsafe { pci::reassign_bars(access, &mut devices, &windows) }
    } else {
        // SAFETY: as above.
        unsafe { pci::assign_unassigned_bars(access, &mut devices, &windows) }
    };
    for e in failures {
        error!("PCI: {e}");
    }
    boot_timing::mark(Phase::PCI);
    // SAFETY: `devices` came from `pci::enumerate` over `access`, their BARs
    // placed just above.
    let disks = unsafe { platform::virtio::probe_all(access, &devices) };
    // SAFETY: as above.
    let scsi_units = unsafe { platform::virtio::scsi::probe_all(access, &devices) };
    // SAFETY: as above.
    let sata = unsafe { platform::ahci::probe_all(access, &devices) };
    // SAFETY: as above.
    let nvme_namespaces = unsafe { platform::nvme::probe_all(access, &devices) };
    boot_timing::mark(Phase::DISK_PROBE);
    entropy_init(access, &devices);
    network_init(access, &devices, cmdline);
    if let Err(status) = protocols::storage::ram_disk::install() {
        error!("EFI_RAM_DISK_PROTOCOL not installed ({status:?})");
    }
    for disk in disks {
        let bdf = disk.bdf();
        if let Err(status) = protocols::storage::add_disk(
            alloc::rc::Rc::new(disk),
            protocols::storage::DiskLocation::pci(bdf),
        ) {
            error!("disk {bdf}: not published ({status:?})");
        }
    }
    for unit in scsi_units {
        let location =
            protocols::storage::DiskLocation::scsi(unit.bdf(), unit.target, unit.lun, unit.cdrom);
        let label = location.label.clone();
        if let Err(status) = protocols::storage::add_disk(alloc::rc::Rc::new(unit), location) {
            error!("disk {label}: not published ({status:?})");
        }
    }
    for device in sata {
        let location = protocols::storage::DiskLocation::sata(
            device.bdf(),
            device.port_number().into(),
            device.is_cdrom(),
        );
        let label = location.label.clone();
        if let Err(status) = protocols::storage::add_disk(alloc::rc::Rc::new(device), location) {
            error!("disk {label}: not published ({status:?})");
        }
    }
    for namespace in nvme_namespaces {
        let bdf = namespace.controller().bdf();
        let location =
            protocols::storage::DiskLocation::nvme(bdf, namespace.nsid(), namespace.eui64());
        let label = location.label.clone();
        if let Err(status) = protocols::storage::add_disk(alloc::rc::Rc::new(namespace), location) {
            error!("disk {label}: not published ({status:?})");
        }
    }
}

/// EFI_RNG_PROTOCOL (UEFI 2.10 §37.5) from the CPU's RDRAND/RDSEED and the
/// first virtio-rng device, when any exists. Without them this costs a few
/// CPUID instructions and a scan of the PCI list already in memory.
fn entropy_init(access: &dyn pci::ConfigAccess, devices: &[pci::PciDevice]) {
    let started = tsc::now_ns();
    // SAFETY: `devices` came from `pci::enumerate` over `access`, their BARs
    // placed by `storage_init`.
    let virtio_rng = unsafe { platform::virtio::rng::probe_first(access, devices) };
    if let Err(status) = protocols::rng::install(platform::cpu_rng::CpuRng::detect(), virtio_rng) {
        error!("EFI_RNG_PROTOCOL not installed: {status:?}");
    }
    debug!(
        "timing: entropy sources {} us",
        tsc::now_ns().saturating_sub(started) / 1000
    );
}

/// The virtio-net functions, each on a handle with its `MAC()` device path,
/// EFI_SIMPLE_NETWORK_PROTOCOL (UEFI 2.10 §24.1), and the PXE client's
/// PXE Base Code and LoadFile (§24.3, §13.1), with HTTP boot's LoadFile on
/// a child handle (§24.7; its URL from `http=`, else DHCP): the boot
/// manager's network options boot through them. Probing negotiates
/// features and reads the MAC; the device starts only when a client uses it.
fn network_init(access: &dyn pci::ConfigAccess, devices: &[pci::PciDevice], cmdline: &str) {
    if let Some(url) = platform::cmdline::values(cmdline, "http").last() {
        protocols::network::http_boot::set_url(&alloc::string::ToString::to_string(&url));
    }
    // SAFETY: `devices` came from `pci::enumerate` over `access`, their BARs
    // placed by `storage_init`.
    let nics = unsafe { platform::virtio::net::probe_all(access, devices) };
    for nic in nics {
        let bdf = nic.bdf();
        let nic: alloc::rc::Rc<dyn platform::net::NetDevice> = alloc::rc::Rc::new(nic);
        let published = protocols::network::add_nic(nic.clone(), bdf).and_then(|handle| {
            protocols::network::pxe::install(handle, nic.clone())?;
            protocols::network::http_boot::install(handle, nic).map(|_| ())
        });
        if let Err(status) = published {
            error!("virtio-net at {bdf}: not published ({status:?})");
        }
    }
}

/// Every hook by which a lower crate calls back into code above it, in one
/// place: `efi` cannot name `protocols`, `loaders` or this binary, so they
/// register functions with it. Called once the disks and the variable
/// store are set up and before anything can boot, so each hook is in place
/// before the event it serves. Set elsewhere only because it must be in
/// place earlier: the fault locator (`interrupts::set_fault_locator`, in
/// `efi_init`, as soon as images can be described).
fn wire_hooks(persist_variables: bool) {
    // NON_VOLATILE SetVariable writes the store back to the ESP file
    // (UEFI 2.10 §8.2); without a writable store variables stay in RAM.
    if persist_variables {
        efi::runtime::set_persist_hook(loaders::nv_store::persist);
    }
    // SetVirtualAddressMap (§8.4), only callable after ExitBootServices.
    efi::runtime::set_virtual_address_change_hook(virtual_address_change);
    // A watchdog expiry (§7.5.2) resets as ResetSystem(EfiResetCold) does
    // (§8.5.1): pending variables flushed, the ACPI reset register used.
    efi::events::set_watchdog_reset_hook(efi::runtime::watchdog_reset);
    // ExitBootServices (§7.4.6), in this order: the timing mark, the APIC
    // tick stopped and interrupts off (the OS finds no tick pending), the
    // disks, the virtio-rng device and the NICs quiesced, then page zero
    // unmapped.
    efi::tables::register_exit_boot_services_hook(exit_boot_services_timing);
    efi::tables::register_exit_boot_services_hook(stop_tick);
    efi::tables::register_exit_boot_services_hook(protocols::storage::quiesce_all);
    efi::tables::register_exit_boot_services_hook(protocols::rng::quiesce);
    efi::tables::register_exit_boot_services_hook(protocols::network::quiesce_all);
    efi::tables::register_exit_boot_services_hook(map_page_zero);
    efi::tables::register_exit_boot_services_hook(panic::os_owns_ram);
    // Measured boot's EV_EFI_GPT_EVENT (TCG PFP): the disk's own table.
    efi::tcg2::set_gpt_source(protocols::storage::gpt_of);
    // The built-in applications (BLS loader, boot menu) as images of the
    // firmware volume, named for the Shell through ComponentName2.
    efi::builtin_images::set_naming_hook(protocols::driver::name_image);
    loaders::builtins::register();
    // From ExitBootServices on, non-volatile changes go to the journal in
    // reserved RAM instead of the disk the OS now owns.
    if persist_variables {
        efi::tables::register_exit_boot_services_hook(arm_variable_journal);
    }
}

/// ExitBootServices: the APIC tick stopped, interrupts off, and a tick the
/// APIC accepted before it stopped taken through our IDT, where it would
/// otherwise reach the OS's vector 0x20 once it enables interrupts.
fn stop_tick() {
    efi::events::stop_interrupts();
    interrupts::drain_pending();
}

/// Where the variable journal (`efi::runtime::journal`) lives: a fixed
/// physical address above the firmware image, so the next start finds it
/// without trusting a pointer, and away from what SeaBIOS (low memory, top
/// of RAM) and QEMU (our ELF at 1 MiB) rewrite on a reset. It and the panic
/// note page after it end exactly at 16 MiB, the pref_address of Linux
/// kernels (Linux boot protocol 2.10): free RAM from there up is one memory
/// map entry, and a loader that stages the kernel at the lowest free
/// address (GRUB 2.06's relocator) stages it on its preferred address. Put
/// lower, the journal left free RAM straddling 16 MiB; GRUB's staging copy
/// then crossed its own target, it leaked that 64 MiB try and needed a
/// 192 MiB VM instead of 128 MiB (`boot_chains::shim_grub_in_a_128_mib_vm`).
const JOURNAL_BASE: u64 = LINUX_PREFERRED_ADDRESS - (JOURNAL_PAGES + 1) * PAGE_SIZE;
/// Where Linux kernels ask to be loaded (x86 `LOAD_PHYSICAL_ADDR`).
const LINUX_PREFERRED_ADDRESS: u64 = 0x100_0000;
/// The journal holds the whole store image plus its header.
const JOURNAL_PAGES: u64 = (VARIABLE_STORE_SIZE as u64
    + efi::runtime::journal_format::JOURNAL_HEADER_SIZE as u64)
    .div_ceil(PAGE_SIZE);

/// Reserves the journal region before anything allocates, so this start
/// reads what the previous boot left there before it could be overwritten.
/// Without it, runtime variable changes stay in RAM as they always did.
fn reserve_variable_journal() {
    // SAFETY: linker-script symbol; only its address is taken.
    let image_end = symbol_address(unsafe { &firmware_end });
    if image_end > JOURNAL_BASE {
        error!("variable journal off: the firmware image ends at {image_end:#x}");
        return;
    }
    let reserved = memory::with_map(|m| {
        m.allocate(
            Placement::Address(JOURNAL_BASE),
            MemoryType::RUNTIME_SERVICES_DATA,
            JOURNAL_PAGES,
        )
    });
    match reserved {
        // SAFETY: the pages were just allocated from free RAM as
        // EfiRuntimeServicesData, for the journal alone; the boot page
        // tables identity-map RAM and the OS maps runtime data 1:1.
        Ok(base) => unsafe {
            efi::runtime::journal::set_region(base, (JOURNAL_PAGES * PAGE_SIZE) as usize)
        },
        Err(e) => error!("variable journal off: {e}"),
    }
}

/// At ExitBootServices: runtime changes to non-volatile variables go to
/// the journal, which records the ESP store generation they continue.
fn arm_variable_journal() {
    let base = loaders::nv_store::disk_generation().unwrap_or(0);
    if !efi::runtime::journal::arm(base) {
        error!("variable journal off: its region cannot hold the store");
    }
}

/// At ExitBootServices: the phase mark, and what runtime memory the OS must
/// leave us (debug level).
fn exit_boot_services_timing() {
    boot_timing::mark(Phase::EXIT_BOOT_SERVICES);
    boot_timing::log_runtime_memory();
    log_firmware_memory();
}

/// The firmware's own memory use, for the benchmark's footprint report:
/// the heap's high-water mark and arenas, and every boot-services page
/// (the heap, stacks, page tables, drivers' buffers, and what the loaders
/// allocated as boot-services data), all of which the OS now reclaims.
fn log_firmware_memory() {
    let heap = HEAP.boot.stats();
    let boot_services = memory::try_with_map(|m| {
        m.regions()
            .iter()
            .filter(|r| {
                r.ty == MemoryType::BOOT_SERVICES_DATA || r.ty == MemoryType::BOOT_SERVICES_CODE
            })
            .map(|r| r.pages * PAGE_SIZE)
            .sum::<u64>()
    })
    .unwrap_or(0);
    info!(
        "firmware memory at ExitBootServices: heap high-water {} KiB, heap arenas {} KiB ({}), boot services pages {} KiB",
        heap.high_water >> 10,
        heap.arena_bytes >> 10,
        heap.arenas,
        boot_services >> 10
    );
}

/// Turns the VMM's map into the EFI memory map and reserves what the
/// firmware itself occupies. Returns the end of RAM.
fn build_memory_map(start_info: &StartInfo) -> u64 {
    // Each serial byte is a trap to the VMM: the entries go out at debug
    // level only, the default level gets one summary line.
    let mut ram_end = 0;
    let mut ram_bytes = 0u64;
    let mut entries = 0usize;
    memory::with_map(|map| {
        for entry in start_info.memmap() {
            entries += 1;
            debug!(
                "  [{:#014x}-{:#014x}] {}",
                entry.addr,
                entry.addr + entry.size - 1,
                entry.kind.name()
            );
            let ty = match entry.kind {
                MemmapType::RAM => {
                    ram_end = ram_end.max(entry.addr + entry.size);
                    ram_bytes = ram_bytes.saturating_add(entry.size);
                    MemoryType::CONVENTIONAL
                }
                MemmapType::ACPI => MemoryType::ACPI_RECLAIM,
                MemmapType::NVS => MemoryType::ACPI_NON_VOLATILE,
                MemmapType::PMEM => MemoryType::PERSISTENT_MEMORY,
                MemmapType::UNUSABLE => MemoryType::UNUSABLE,
                _ => MemoryType::RESERVED,
            };
            if let Err(e) = map.add(entry.addr, entry.size, ty) {
                error!("memory map entry {entry:x?} dropped: {e}");
            }
        }
        // Low RAM is free memory, as on OVMF: `StartInfo::parse` has copied
        // the start_info, memory map and command line the VMM left there,
        // and the BIOS areas (EBDA, 0xA0000-0xFFFFF) are not RAM in the
        // VMMs' maps. Loaders that need memory below 1 MiB (real-mode
        // trampolines) allocate it with AllocateMaxAddress, and the SCT's
        // memory tests look for a second free region. Page 0 stays
        // allocated: it is unmapped until ExitBootServices to catch NULL.
        let _ = map.reserve(0, 1, MemoryType::BOOT_SERVICES_DATA);
        let start = symbol_address(
            // SAFETY: linker-script symbols; only their addresses are taken.
            unsafe { &firmware_start },
        );
        // SAFETY: as above.
        let code_end = symbol_address(unsafe { &text_end });
        // SAFETY: as above.
        let end = symbol_address(unsafe { &firmware_end });
        let _ = map.reserve(
            start,
            (code_end - start) / PAGE_SIZE,
            MemoryType::RUNTIME_SERVICES_CODE,
        );
        let _ = map.reserve(
            code_end,
            (end - code_end) / PAGE_SIZE,
            MemoryType::RUNTIME_SERVICES_DATA,
        );
        // The VMM's modules (the Secure Boot key input) stay where it put
        // them until read; the OS gets the pages back.
        for module in start_info.modules() {
            let first = module.addr & !(PAGE_SIZE - 1);
            let last = module.addr.saturating_add(module.size).div_ceil(PAGE_SIZE) * PAGE_SIZE;
            if first < end && last > start {
                error!(
                    "PVH module at {:#x} overlaps the firmware: ignored",
                    module.addr
                );
                continue;
            }
            if let Err(e) = map.reserve(
                first,
                (last - first) / PAGE_SIZE,
                MemoryType::BOOT_SERVICES_DATA,
            ) {
                error!("PVH module at {:#x} not reserved: {e}", module.addr);
            }
        }
    });
    info!(
        "memory map from the VMM: {entries} entries, {} MiB of RAM",
        ram_bytes >> 20
    );
    ram_end
}

/// Secure Boot's keys (`efi::secure_boot`): the first PVH module that is a
/// key input (QEMU `-initrd`, Cloud Hypervisor `--initramfs`). A key input
/// that is malformed is not a reason to boot unverified: the firmware then
/// enforces Secure Boot with no key, so nothing but its own images runs.
fn install_secure_boot_keys(start_info: &StartInfo) {
    use efi::secure_boot::key_input::{self, KeyInputError};
    for (index, module) in start_info.modules().iter().enumerate() {
        let Ok(size) = usize::try_from(module.size) else {
            continue;
        };
        if module.addr == 0 || size == 0 {
            continue;
        }
        // SAFETY: the VMM (trusted, like the start info that names the
        // module) put the module in RAM; build_memory_map reserved its
        // pages before the first allocation (a module overlapping the
        // firmware would only be misread, and a misread input refuses
        // every image), the boot page tables identity-map RAM and nothing
        // writes them; the slice lives for this call only.
        let bytes = unsafe { core::slice::from_raw_parts(module.addr as *const u8, size) };
        match key_input::parse(bytes) {
            Ok(keys) => {
                info!("secure boot: key input from PVH module {index} ({size} bytes)");
                efi::secure_boot::install(Some(&keys));
                return;
            }
            Err(KeyInputError::NotKeyInput) => {
                warn!("PVH module {index} ({size} bytes) is not a Secure Boot key input; ignored")
            }
            Err(e) => {
                error!("secure boot: key input in PVH module {index} refused: {e}");
                efi::secure_boot::install_without_keys();
                return;
            }
        }
    }
    efi::secure_boot::install(None);
}

fn init_heap() {
    if !HEAP.boot.init() {
        halt_with(format_args!(
            "cannot allocate the firmware heap's first {} KiB",
            platform::heap::GROW_STEP >> 10
        ));
    }
}

/// Maps the firmware image W^X (layout.ld page-aligns the boundaries): read-only
/// data, read-execute code, read-write no-execute data; and unmaps the guard
/// page under the fault stack.
fn protect_firmware() {
    // SAFETY: linker-script symbols; only their addresses are taken.
    let (start, code, code_end, end) = unsafe {
        (
            symbol_address(&firmware_start),
            symbol_address(&text_start),
            symbol_address(&text_end),
            symbol_address(&firmware_end),
        )
    };
    paging::set_access(start, code - start, Access::RO);
    paging::set_access(code, code_end - code, Access::RX);
    paging::set_access(code_end, end - code_end, Access::RW);
    interrupts::protect_fault_stack();
}

/// Maps page 0 again at ExitBootServices: the OS owns low memory from then on
/// and runs on our page tables until it installs its own.
fn map_page_zero() {
    paging::set_access(0, PAGE_SIZE, Access::RWX);
}

/// A stack with an unmapped guard page below it; returns its top.
fn new_stack() -> u64 {
    let pages = STACK_SIZE / PAGE_SIZE + 1;
    let base = memory::with_map(|m| {
        m.allocate(Placement::Anywhere, MemoryType::BOOT_SERVICES_DATA, pages)
    })
    .unwrap_or_else(|e| halt_with(format_args!("cannot allocate the firmware stack: {e}")));
    paging::set_access(base, PAGE_SIZE, Access::NONE);
    base + pages * PAGE_SIZE
}

fn halt() -> ! {
    loop {
        // SAFETY: halting with interrupts off parks the CPU.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

fn halt_with(args: core::fmt::Arguments) -> ! {
    use core::fmt::Write;
    let _ = writeln!(serial::Serial, "{args}");
    halt()
}
