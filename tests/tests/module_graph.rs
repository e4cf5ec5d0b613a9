//! No module cycles inside the layer crates: the `crate::<module>` graph
//! between each crate's top-level modules must be acyclic
//! (`vm_tests::module_graph`). A host-only test; it needs no VM.
//!
//! Crates that still have cycles are `#[ignore]`d with the cycle-forming
//! module pairs in the reason; `cargo test -p vm-tests --test module_graph
//! -- --include-ignored` shows where they stand.

use vm_tests::module_graph::{find_cycle, module_graph, mutually_reachable_pairs};
use vm_tests::workspace_root;

/// Fails with every cycle-forming pair of modules of `krate`, if any.
fn assert_acyclic(krate: &str) {
    let src = workspace_root().join(krate).join("src");
    let graph = module_graph(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    assert!(!graph.is_empty(), "no modules found in {}", src.display());
    if let Some(cycle) = find_cycle(&graph) {
        let pairs: Vec<String> = mutually_reachable_pairs(&graph)
            .into_iter()
            .map(|(a, b)| format!("{a} <-> {b}"))
            .collect();
        panic!(
            "{krate} has module cycles, e.g. {}; mutually dependent: {}",
            cycle.join(" -> "),
            pairs.join(", ")
        );
    }
}

#[test]
fn loaders_modules_are_acyclic() {
    assert_acyclic("loaders");
}

#[test]
fn platform_modules_are_acyclic() {
    assert_acyclic("platform");
}

#[test]
fn efi_modules_are_acyclic() {
    assert_acyclic("efi");
}

#[test]
fn protocols_modules_are_acyclic() {
    assert_acyclic("protocols");
}

#[test]
fn secure_boot_modules_are_acyclic() {
    assert_acyclic("secure-boot");
}

/// The `loaders` modules that may name the `efi` crate's internals: the
/// firmware-private platform boot manager (variable store, its disk image
/// and journal, batched persistence, the built-ins' registration) and the
/// services module itself. See `loaders/src/services.rs` for the edge.
const LOADERS_ALLOWED_EFI_INTERNALS: &[&str] = &[
    "auto_options",
    "boot_manager",
    "builtins",
    "global_variables",
    "nv_journal",
    "nv_store",
    "services",
];

/// What every loader may name in `efi`: pure parsers and types, no
/// service implementation.
const EFI_PURE_MODULES: &[&str] = &["device_path", "pe", "ids", "spec_gaps"];

/// The `efi::<module>` paths `source` names outside its unit tests (the
/// `#[cfg(test)]` module at the end) and outside comments, one per use.
fn efi_paths(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in source.lines().enumerate() {
        if line.trim_start() == "#[cfg(test)]" {
            let rest: Vec<&str> = source.lines().skip(number + 1).take(1).collect();
            if rest
                .first()
                .is_some_and(|l| l.trim_start().starts_with("mod tests"))
            {
                break;
            }
        }
        let code = line.split("//").next().unwrap_or("");
        let bytes = code.as_bytes();
        let mut at = 0;
        while let Some(offset) = code[at..].find("efi::") {
            let start = at + offset;
            at = start + "efi::".len();
            let preceded_by_word =
                start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            if preceded_by_word {
                continue;
            }
            let module: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '{')
                .collect();
            found.push((number + 1, module));
        }
    }
    found
}

/// Loaders reach what a boot service or protocol offers through the system
/// table they run with (`loaders/src/services.rs`), not through `efi`
/// internals: only the allowed modules may name `efi::<internal>`.
#[test]
fn loaders_use_boot_services_not_efi_internals() {
    let src = workspace_root().join("loaders").join("src");
    let mut offenders = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    assert!(
        files.len() > 10,
        "loaders sources found in {}",
        src.display()
    );
    for path in files {
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if LOADERS_ALLOWED_EFI_INTERNALS.contains(&module.as_str()) {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (line, efi_module) in efi_paths(&source) {
            if !EFI_PURE_MODULES.contains(&efi_module.as_str()) {
                offenders.push(format!("loaders/src/{module}.rs:{line}: efi::{efi_module}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "loader modules naming efi internals (use crate::services, or add the module to \
         LOADERS_ALLOWED_EFI_INTERNALS if it is firmware-private):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn efi_paths_are_found_in_code_only() {
    let source = "use efi::ids::HandleId;\nuse efi::{tables, pe};\n// efi::image in a comment\n\
                  let x = uefi::x; let y = efi::image::start(h); // efi::tables\n\
                  #[cfg(test)]\nmod tests {\n use efi::runtime;\n}\n";
    let found: Vec<String> = efi_paths(source).into_iter().map(|(_, m)| m).collect();
    assert_eq!(found, ["ids", "{tables", "image"]);
}
