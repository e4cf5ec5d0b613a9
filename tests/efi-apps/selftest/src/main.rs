//! EFI self-test: exercises every UEFI 2.10 boot and runtime service, including error
//! paths, printing `PASS <name>` / `FAIL <name>: <detail>` per check on ConOut, then
//! `N passed, M failed`, then ResetSystem(EfiResetShutdown).
//!
//! The same binary doubles as the child image of the image tests: started with
//! [`images::CHILD_OPTIONS`] as load options, it calls Exit() with a known status and
//! exit data instead of running the suite.

#![no_std]
#![no_main]

mod boot_options;
mod ctx;
mod events;
mod firmware_volume;
mod global_variables;
mod images;
mod memory;
mod protocols;
mod rng;
mod runtime;
mod sct_core;
mod sct_device_path;
mod sct_driver_override;
mod sct_file;
mod sct_hii;
mod sct_runtime;
mod snp;
mod tables;

use r_efi::efi;

use ctx::Ctx;

/// One test group: a name for the log and the function running its checks.
type Test = (&'static str, fn(&mut Ctx));

/// The suite, in execution order. ExitBootServices runs last: after a failed call the
/// spec only guarantees memory allocation services (UEFI 2.10 §7.4.6).
const TESTS: &[Test] = &[
    ("tables", tables::run),
    ("config_table", tables::run_config_table),
    ("memory", memory::run),
    ("protocols", protocols::run),
    ("open_protocol", protocols::run_open_protocol),
    ("connect", protocols::run_connect),
    ("driver_model", protocols::run_driver_model),
    ("events", events::run),
    ("tpl", events::run_tpl),
    ("misc", events::run_misc),
    ("images", images::run),
    ("sct_core", sct_core::run),
    ("sct_driver_override", sct_driver_override::run),
    ("time", runtime::run_time),
    ("variables", runtime::run_variables),
    ("sct_file", sct_file::run),
    ("runtime_misc", runtime::run_misc_runtime),
    ("sct_runtime", sct_runtime::run),
    ("sct_device_path", sct_device_path::run),
    ("sct_hii", sct_hii::run),
    ("global_variables", global_variables::run),
    ("rng", rng::run),
    ("boot_options", boot_options::run),
    ("firmware_volume", firmware_volume::run),
    ("snp", snp::run),
    ("exit_boot_services", memory::run_exit_boot_services),
];

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(image: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table that outlives boot services
    // (UEFI 2.10 §4.1); null is rejected.
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    let Some(mut ctx) = Ctx::new(image, st) else {
        return efi::Status::LOAD_ERROR;
    };
    if images::is_child(&ctx) {
        return images::child_main(&ctx);
    }

    // The boot manager arms a 5-minute watchdog (UEFI 2.10 §3.1.2); TCG runs can be slow.
    let status = (ctx.bs.set_watchdog_timer)(0, 0, 0, core::ptr::null_mut());
    ctx.ok("misc.set_watchdog_timer.disable", status);

    for (group, test) in TESTS {
        ctx.print(format_args!("# {group}\n"));
        test(&mut ctx);
    }

    let (passed, failed) = ctx.tally();
    ctx.print(format_args!("{passed} passed, {failed} failed\n"));
    let status = if failed == 0 {
        efi::Status::SUCCESS
    } else {
        efi::Status::ABORTED
    };
    (ctx.rt.reset_system)(efi::RESET_SHUTDOWN, status, 0, core::ptr::null_mut());
    status
}
