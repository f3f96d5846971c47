//! The api crate's inside structure, checked on its source: route modules
//! never import one another, layers only point down (routes → ingest →
//! access → language → wire), and no two modules import each other, directly
//! or around a cycle.
//!
//! The check reads every `crate::...` path of the production code (test
//! modules and comments left out), resolves it to the module it names, and
//! looks at the graph of modules that gives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may only import from its own layer or
/// a lower one. `ingest` is how the write routes use the ingest service
/// (the authorizer of a whole write plan); it sits right under the routes.
const LAYERS: &[&str] = &["wire", "language", "access", "ingest", "routes"];

/// Modules every layer may name: the crate root (`AppState`, `ApiConfig`).
fn is_root(module: &str) -> bool {
    module.is_empty()
}

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `routes/metric.rs` → `routes::metric`, `routes/mod.rs` → `routes`,
/// `lib.rs` → `` (the root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

/// The source without comments and without `#[cfg(test)]` items.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: to the end of its braces (or its `;`).
            let mut depth = 0i32;
            let mut opened = false;
            i += 1;
            while i < lines.len() {
                let l = strip_comment(lines[i]);
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                i += 1;
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push_str(strip_comment(line));
        out.push('\n');
        i += 1;
    }
    out
}

/// A line without its `//` comment (a `//` inside a string literal is kept:
/// the scan only cares about `crate::` paths, which strings do not hold).
fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    let bytes = line.as_bytes();
    let mut k = 0;
    while k < bytes.len() {
        match bytes[k] {
            b'\\' if in_str => k += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && bytes.get(k + 1) == Some(&b'/') => return &line[..k],
            _ => {}
        }
        k += 1;
    }
    line
}

/// Every path after `crate::`, with `use crate::{a::b, c::{d, e}}` groups
/// expanded to their first segments' paths.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `gnocchi_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            expand_group("", &group[..end], &mut out);
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = path.trim_end_matches(':').to_string();
        if let Some(group) = rest[path.len()..]
            .strip_prefix("::{")
            .filter(|_| !path.is_empty())
        {
            let end = matching_brace(group);
            expand_group(&path, &group[..end], &mut out);
        } else {
            out.push(path);
        }
    }
    out
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

fn expand_group(prefix: &str, group: &str, out: &mut Vec<String>) {
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let head: String = item
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let head = head.trim_end_matches(':');
        let full = match (prefix.is_empty(), head) {
            (_, "self") => prefix.to_string(),
            (true, h) => h.to_string(),
            (false, h) => format!("{prefix}::{h}"),
        };
        if let Some(sub) = item[head.len()..].trim_start_matches(':').strip_prefix('{') {
            let end = matching_brace(sub);
            expand_group(&full, &sub[..end], out);
        } else {
            out.push(full);
        }
    }
}

/// The longest prefix of `path` that is a module (the root when none is).
fn resolve(path: &str, modules: &BTreeSet<String>) -> String {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find(|m| modules.contains(m))
        .unwrap_or_default()
}

/// Module → the modules its production code names (itself, its own
/// submodules and the root left out; a file's own `mod` declarations are
/// structure, not imports).
fn graph_of(sources: &BTreeMap<String, String>) -> Graph {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, text) in sources {
        let deps = graph.entry(module.clone()).or_default();
        for path in crate_paths(&production_code(text)) {
            let target = resolve(&path, &modules);
            let own_child = target.starts_with(&format!("{module}::"));
            let ancestor = module.starts_with(&format!("{target}::"));
            if target != *module && !is_root(&target) && !own_child && !ancestor {
                deps.insert(target);
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer_of(module))
}

fn is_route(module: &str) -> bool {
    module.starts_with("routes::")
}

/// Every way the graph breaks the rules, as sentences.
fn violations(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (from, deps) in graph {
        for to in deps {
            if is_route(from) && is_route(to) {
                found.push(format!("route module {from} imports route module {to}"));
            }
            match (rank(from), rank(to)) {
                (Some(a), Some(b)) if b > a => found.push(format!(
                    "{from} ({}) imports {to} ({}), a higher layer",
                    LAYERS[a], LAYERS[b]
                )),
                (None, _) if !from.is_empty() && from != "test_support" => {
                    found.push(format!("{from} is in no layer"))
                }
                _ => {}
            }
        }
    }
    for cycle in cycles(graph) {
        found.push(format!("import cycle: {}", cycle.join(" → ")));
    }
    found
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

fn crate_sources() -> BTreeMap<String, String> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .iter()
        .map(|f| {
            (
                module_of(&src, f),
                std::fs::read_to_string(f).expect("read source"),
            )
        })
        .collect()
}

#[test]
fn route_modules_never_import_each_other_and_layers_point_down_without_cycles() {
    let graph = graph_of(&crate_sources());
    assert!(
        graph.keys().filter(|m| is_route(m)).count() >= 13,
        "the route modules were not found: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    let found = violations(&graph);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

// The checker itself, on small made-up crates: each rule must be able to fail.

fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect()
}

#[test]
fn a_route_importing_another_route_is_reported() {
    let graph = graph_of(&sources(&[
        ("routes", ""),
        ("routes::a", "use crate::routes::b::helper;"),
        ("routes::b", "pub(crate) fn helper() {}"),
    ]));
    assert_eq!(
        violations(&graph),
        ["route module routes::a imports route module routes::b"]
    );
}

#[test]
fn a_lower_layer_importing_a_higher_one_is_reported_even_inside_a_group() {
    let graph = graph_of(&sources(&[
        (
            "wire::error",
            "use crate::{access::{policy::Target, auth}, wire::json};",
        ),
        ("wire::json", ""),
        ("access::policy", ""),
        ("access::auth", ""),
    ]));
    assert_eq!(
        violations(&graph),
        [
            "wire::error (wire) imports access::auth (access), a higher layer",
            "wire::error (wire) imports access::policy (access), a higher layer",
        ]
    );
}

#[test]
fn an_import_cycle_is_reported_but_tests_and_comments_are_not_imports() {
    let graph = graph_of(&sources(&[
        ("wire::a", "fn f() { crate::wire::b::g() }"),
        ("wire::b", "fn g() { crate::wire::c::h() }"),
        ("wire::c", "fn h() { crate::wire::a::f() }"),
        (
            "wire::d",
            "// see crate::wire::e\n#[cfg(test)]\nmod tests {\n    use crate::wire::e;\n}\n",
        ),
        ("wire::e", "fn e() { crate::wire::d::x() }"),
    ]));
    assert_eq!(
        violations(&graph),
        ["import cycle: wire::a → wire::b → wire::c"]
    );
}
