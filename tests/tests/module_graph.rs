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
