//! The `crate::<module>` reference graph between the top-level modules of
//! one of the firmware's crates, and a cycle check over it. A module is a
//! file `src/<name>.rs` or a directory `src/<name>/`; a reference is any
//! `crate::<name>` path outside comments, in `use` lists
//! (`crate::{a, b::c}`) as well as in code, test code included. Cycles
//! between modules mean neither can be understood, tested or moved without
//! the other; `tests/tests/module_graph.rs` runs this for every crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module name -> the modules it references (itself excluded).
pub type ModuleGraph = BTreeMap<String, BTreeSet<String>>;

/// The graph of the crate whose sources are in `src` (its `lib.rs` or
/// `main.rs`, the root, is not a module and is left out).
pub fn module_graph(src: &Path) -> std::io::Result<ModuleGraph> {
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(src)? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(String::from) else {
            continue;
        };
        if path.is_dir() {
            files.entry(stem).or_default().extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            files.entry(stem).or_default().push(path);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = ModuleGraph::new();
    for (module, paths) in &files {
        let mut edges = BTreeSet::new();
        for path in paths {
            let text = fs::read_to_string(path)?;
            edges.extend(
                crate_references(&text)
                    .into_iter()
                    .filter(|name| name != module && modules.contains(name)),
            );
        }
        graph.insert(module.clone(), edges);
    }
    Ok(graph)
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(out)
}

/// `text` without `//` line comments (doc comments included) and `/* */`
/// block comments, so prose naming a module is no dependency. String
/// literals are kept as they are: a `crate::x` inside one is rare enough.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |end| &rest[l + end..]);
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = rest[b + 2..]
                    .find("*/")
                    .map_or("", |end| &rest[b + 2 + end + 2..]);
            }
            (None, None) => {
                out.push_str(rest);
                rest = "";
            }
            (Some(_), None) => unreachable!("the first arm takes a line comment without a block"),
        }
    }
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first path segments after each `crate::` (the top-level names
/// used), including each item of a `crate::{...}` list.
pub fn crate_references(text: &str) -> BTreeSet<String> {
    let code = strip_comments(text);
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("crate::") {
        let at = from + found;
        from = at + "crate::".len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(is_ident_char) {
            continue; // e.g. `my_crate::`, not this crate
        }
        let rest = &code[from..];
        if let Some(list) = rest.strip_prefix('{') {
            names.extend(list_heads(list));
        } else {
            let name: String = rest.chars().take_while(|&c| is_ident_char(c)).collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The first segment of each item of a `{a, b::{c, d}, e as f}` list;
/// `list` starts just after the opening brace.
fn list_heads(list: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut at_item_start = true;
    let mut chars = list.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if at_item_start && is_ident_char(c) => {
                let name: String = list[i..]
                    .chars()
                    .take_while(|&c| is_ident_char(c))
                    .collect();
                for _ in 1..name.chars().count() {
                    chars.next();
                }
                heads.push(name);
                at_item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// A cycle of `graph` as the modules along it (the first repeated at the
/// end), or `None` when the graph is acyclic.
pub fn find_cycle(graph: &ModuleGraph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        OnPath,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &'a ModuleGraph,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(node, Mark::OnPath);
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::Unvisited) {
                Mark::OnPath => {
                    let start = path.iter().position(|&n| n == next)?;
                    let mut cycle: Vec<String> =
                        path[start..].iter().map(|n| n.to_string()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::Unvisited => {
                    if let Some(cycle) = visit(next, graph, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node.as_str()).copied().unwrap_or(Mark::Unvisited) == Mark::Unvisited
            && let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// Every cycle-forming pair of modules: `(a, b)` with `a < b`, each
/// reachable from the other. Lists them all, where `find_cycle` stops at
/// the first.
pub fn mutually_reachable_pairs(graph: &ModuleGraph) -> Vec<(String, String)> {
    let reachable = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(node) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reachable(m))).collect();
    let mut pairs = Vec::new();
    for (a, from_a) in &reach {
        for b in from_a.iter().filter(|b| b.as_str() > a.as_str()) {
            if reach
                .get(b)
                .is_some_and(|from_b| from_b.contains(a.as_str()))
            {
                pairs.push((a.to_string(), b.clone()));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> ModuleGraph {
        edges
            .iter()
            .map(|(m, to)| (m.to_string(), to.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn references_come_from_paths_and_use_lists_not_comments() {
        let text = "//! see `crate::menu`\n\
                    use crate::bls::{self, Entry};\n\
                    use crate::{pages::PageBuffer, uki as u, x::{y, z}};\n\
                    /* crate::hidden */ fn f() { crate::direct::run(); other_crate::no(); }\n";
        let names: Vec<String> = crate_references(text).into_iter().collect();
        assert_eq!(names, ["bls", "direct", "pages", "uki", "x"]);
    }

    #[test]
    fn cycles_are_found_and_acyclic_graphs_pass() {
        let acyclic = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(find_cycle(&acyclic), None);
        assert!(mutually_reachable_pairs(&acyclic).is_empty());
        let cyclic = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        let cycle = find_cycle(&cyclic).unwrap();
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
        assert_eq!(
            mutually_reachable_pairs(&cyclic),
            [
                ("a".to_string(), "b".to_string()),
                ("a".to_string(), "c".to_string()),
                ("b".to_string(), "c".to_string())
            ]
        );
    }
}
