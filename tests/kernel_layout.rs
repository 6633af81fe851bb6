//! The kernel crate's module graph stays a DAG, and `src/lib.rs` names it in reading order.
//!
//! Reads the real sources under `src/`: every `crate::X` path outside comments and
//! `#[cfg(test)]` items is an edge from the file's top-level module to `X` (files under
//! `src/vmo/` belong to `vmo`). The graph must have no cycle, and the `//!` header of
//! `src/lib.rs` must name every module, each after the modules it uses (leaves first).
//! Run with `--nocapture` to see the graph and a topological order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The code of one file without comments and `#[cfg(test)]` items (rustfmt layout assumed:
/// an item's closing brace sits at the indentation of its attribute).
fn code_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            skip_item(&mut lines, line.len() - trimmed.len());
            continue;
        }
        out.push(line);
    }
    out
}

/// Skips the item after an attribute indented by `indent`: one line ending in `;`, or up to
/// the `}` at the same indentation.
fn skip_item<'a>(lines: &mut impl Iterator<Item = &'a str>, indent: usize) {
    for line in lines {
        let trimmed = line.trim_start();
        let same_level = line.len() - trimmed.len() == indent;
        if same_level && (trimmed.starts_with('}') || trimmed.ends_with(';')) {
            return;
        }
    }
}

/// The first path segments after each `crate::` in `code` (`crate::{a::X, b}` gives a, b).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            refs.extend(group_heads(group));
        } else {
            refs.insert(ident(rest).to_string());
        }
    }
    refs.retain(|r| !r.is_empty());
    refs
}

/// The leading identifier of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of each entry of a `{...}` use group (`group` starts after the `{`).
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut depth, mut entry_start) = (Vec::new(), 0, true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => entry_start = true,
            c if entry_start && depth == 0 && !c.is_whitespace() => {
                heads.push(ident(&group[i..]).to_string());
                entry_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// Module name of a file under `src/`: `vmo.rs` and `vmo/x.rs` are both `vmo`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel.components().next().expect("non-empty path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::` graph of `src/` (lib.rs, the root, left out; self-edges dropped).
fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = code_lines(&text).join("\n");
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(crate_refs(&code).into_iter().filter(|r| *r != module));
    }
    graph
}

/// A topological order, leaves first, or the modules left on cycles.
fn topo_order(graph: &Graph) -> Result<Vec<String>, BTreeSet<String>> {
    let mut order: Vec<String> = Vec::new();
    let mut left: BTreeSet<String> = graph.keys().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|m| graph[*m].iter().all(|d| !left.contains(d)))
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(left);
        }
        for m in ready {
            left.remove(&m);
            order.push(m);
        }
    }
    Ok(order)
}

fn print_graph(graph: &Graph) {
    for (module, deps) in graph {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{module:>8} -> {}", deps.join(", "));
    }
}

#[test]
fn kernel_modules_form_a_dag() {
    let graph = graph();
    print_graph(&graph);
    for (module, deps) in &graph {
        for dep in deps {
            assert!(
                graph.contains_key(dep),
                "{module} uses unknown module {dep}"
            );
        }
    }
    match topo_order(&graph) {
        Ok(order) => println!("order: {}", order.join(" < ")),
        Err(cycle) => panic!("modules on a cycle: {cycle:?}"),
    }
}

/// The modules `lib.rs`'s `//!` header names as [`x`], in order of first mention.
fn lib_doc_order() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    let text = std::fs::read_to_string(path).expect("readable lib.rs");
    let mut order: Vec<String> = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with("//!")) {
        for (at, _) in line.match_indices("[`") {
            let name = ident(&line[at + 2..]).to_string();
            if !order.contains(&name) {
                order.push(name);
            }
        }
    }
    order
}

#[test]
fn lib_doc_names_every_module_leaves_first() {
    let graph = graph();
    let order = lib_doc_order();
    let named: Vec<&String> = order.iter().filter(|m| graph.contains_key(*m)).collect();
    for module in graph.keys() {
        assert!(
            named.contains(&module),
            "lib.rs's header does not name {module}"
        );
    }
    for (i, module) in named.iter().enumerate() {
        for dep in &graph[*module] {
            let at = named.iter().position(|m| *m == dep).expect("named");
            assert!(at < i, "lib.rs names {module} before {dep}, which it uses");
        }
    }
}

#[test]
fn the_parser_sees_groups_and_skips_tests_and_comments() {
    let text = "use crate::{abi::X, vmo::{A, B}};\n// crate::port\n#[cfg(test)]\nmod tests {\n    use crate::fault;\n}\nfn f() { crate::pager::new(); }\n";
    let refs = crate_refs(&code_lines(text).join("\n"));
    let want: BTreeSet<String> = ["abi", "vmo", "pager"].map(String::from).into();
    assert_eq!(refs, want);
}
