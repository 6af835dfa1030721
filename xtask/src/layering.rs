//! Keeps the kernel's and the engine's modules layered: reads every `kernel/src` (and
//! `crates/echos-core/src`) file, collects the references
//! from one top-level module to another (`crate::X`, `$crate::X`, `super::…` that reaches the
//! crate root, `use` groups) and fails when they form a cycle, naming the references that do.
//!
//! The crate root (`main.rs`, node `main`) declares every module, so it depends on all of them;
//! any reference back to a root item (`crate::Kernel`, `crate::kernel_main`) is a cycle. Macros
//! exported with `#[macro_export]` live at the crate root by path but count as the module that
//! defines them. The scanner ignores comments, strings and character literals; it needs no more
//! of Rust's grammar than paths, brace groups and `mod name {` blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The crate root's node name.
const ROOT: &str = "main";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Colon2,
    LBrace,
    RBrace,
    Comma,
    Hash,
    LBracket,
    RBracket,
    Bang,
    Other,
}

/// Tokens with their 1-based line numbers; comments, strings and char literals dropped.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    // Skips a quoted string starting at the opening quote `i`; returns the index after it.
    let skip_string = |mut k: usize, line: &mut usize| {
        k += 1;
        while k < c.len() && c[k] != '"' {
            if c[k] == '\\' {
                k += 1;
            }
            if at(k) == '\n' {
                *line += 1;
            }
            k += 1;
        }
        k + 1
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0usize;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(i, &mut line);
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a, 'static).
            if at(i + 1) == '\\' {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw_prefix = word == "r" || word == "br";
            if raw_prefix && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '"' | '#'))) {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1;
                loop {
                    if i >= c.len() {
                        break;
                    }
                    if c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            } else if word == "b" && at(i) == '"' {
                i = skip_string(i, &mut line);
            } else if word == "r" && at(i) == '#' {
                // A raw identifier (`r#type`): the `#` is dropped, the name follows.
                i += 1;
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Other, line));
        } else {
            let t = match ch {
                ':' if at(i + 1) == ':' => {
                    i += 1;
                    Tok::Colon2
                }
                '{' => Tok::LBrace,
                '}' => Tok::RBrace,
                ',' => Tok::Comma,
                '#' => Tok::Hash,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '!' => Tok::Bang,
                _ => Tok::Other,
            };
            out.push((t, line));
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// A source file of the crate with its module path (`[]` for the root, `["arch", "boot"]`).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    text: String,
}

/// One reference from a module to another, for the error message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Reference {
    file: String,
    line: usize,
    path: String,
}

/// Top-level module → the top-level modules it references, with where.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Reference>>>;

fn top(module: &[String]) -> String {
    module.first().cloned().unwrap_or_else(|| ROOT.to_string())
}

/// Names of macros each file exports to the crate root.
fn exported_macros(tokens: &[(Tok, usize)]) -> Vec<String> {
    let mut names = Vec::new();
    for (k, w) in tokens.windows(4).enumerate() {
        if w[0].0 == Tok::Hash
            && w[1].0 == Tok::LBracket
            && ident(Some(&w[2])) == Some("macro_export")
            && w[3].0 == Tok::RBracket
        {
            // Skip any further attributes to `macro_rules! name`.
            let mut j = k + 4;
            while j < tokens.len() && ident(tokens.get(j)) != Some("macro_rules") {
                j += 1;
            }
            if tokens.get(j + 1).map(|t| &t.0) == Some(&Tok::Bang) {
                if let Some(name) = ident(tokens.get(j + 2)) {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

/// The first names a path tree starting at `j` reaches: `a::…` gives `a`; `{a, b::c}` gives
/// `a` and `b`; a `self` inside a group gives `None` (the base module itself).
fn tree_heads(tokens: &[(Tok, usize)], j: usize) -> Vec<Option<String>> {
    match tokens.get(j).map(|t| &t.0) {
        Some(Tok::Ident(name)) if name == "self" => vec![None],
        Some(Tok::Ident(name)) => vec![Some(name.clone())],
        Some(Tok::LBrace) => {
            let mut heads = Vec::new();
            let (mut k, mut depth, mut element_start) = (j + 1, 1usize, true);
            while k < tokens.len() && depth > 0 {
                match &tokens[k].0 {
                    Tok::LBrace => {
                        if depth == 1 && element_start {
                            heads.extend(tree_heads(tokens, k));
                        }
                        depth += 1;
                        element_start = false;
                    }
                    Tok::RBrace => depth -= 1,
                    Tok::Comma if depth == 1 => element_start = true,
                    Tok::Ident(name) if depth == 1 && element_start => {
                        heads.push(if name == "self" {
                            None
                        } else {
                            Some(name.clone())
                        });
                        element_start = false;
                    }
                    _ => element_start = false,
                }
                k += 1;
            }
            heads
        }
        _ => Vec::new(),
    }
}

/// The module path of a file at `rel` under `src/`: `main.rs` is the root, `a/mod.rs` is `a`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut module: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if module.last().is_some_and(|m| m == "mod") || module == ["main"] || module == ["lib"] {
        module.pop();
    }
    module
}

/// Reads every `.rs` file under `src` with its module path.
fn read_sources(src: &Path) -> Result<Vec<SourceFile>, String> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("reading {}: {e}", dir.display()))?
                .path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            files.push(SourceFile {
                path: rel.to_path_buf(),
                module: module_of(rel),
                text,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The graph of references between the crate's top-level modules (self-references dropped).
fn module_graph(files: &[SourceFile]) -> Graph {
    let lexed: Vec<Vec<(Tok, usize)>> = files.iter().map(|f| lex(&f.text)).collect();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect();
    let mut macros: BTreeMap<String, String> = BTreeMap::new();
    for (f, tokens) in files.iter().zip(&lexed) {
        for name in exported_macros(tokens) {
            macros.insert(name, top(&f.module));
        }
    }
    let mut graph = Graph::new();
    // The root declares every module.
    for m in &modules {
        graph
            .entry(ROOT.to_string())
            .or_default()
            .entry(m.clone())
            .or_default()
            .push(Reference {
                file: "main.rs".into(),
                line: 0,
                path: format!("mod {m}"),
            });
    }
    for (f, tokens) in files.iter().zip(&lexed) {
        let from = top(&f.module);
        // Inline `mod name {` blocks: (name, brace depth inside the block).
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        for (k, (tok, line)) in tokens.iter().enumerate() {
            match tok {
                Tok::LBrace => {
                    depth += 1;
                    if k >= 2 && ident(tokens.get(k - 2)) == Some("mod") {
                        if let Some(name) = ident(tokens.get(k - 1)) {
                            inline.push((name.to_string(), depth));
                        }
                    }
                    continue;
                }
                Tok::RBrace => {
                    if inline.last().is_some_and(|&(_, d)| d == depth) {
                        inline.pop();
                    }
                    depth = depth.saturating_sub(1);
                    continue;
                }
                _ => {}
            }
            let Tok::Ident(word) = tok else {
                continue;
            };
            if k > 0 && tokens[k - 1].0 == Tok::Colon2 {
                continue;
            }
            if tokens.get(k + 1).map(|t| &t.0) != Some(&Tok::Colon2) {
                continue;
            }
            let mut here: Vec<String> = f.module.clone();
            here.extend(inline.iter().map(|(n, _)| n.clone()));
            let (base, next) = match word.as_str() {
                "crate" => (Vec::new(), k + 2),
                "super" => {
                    let mut j = k;
                    let mut base = here;
                    while ident(tokens.get(j)) == Some("super")
                        && tokens.get(j + 1).map(|t| &t.0) == Some(&Tok::Colon2)
                    {
                        base.pop();
                        j += 2;
                    }
                    (base, j)
                }
                _ => continue,
            };
            let targets: Vec<String> = if base.is_empty() {
                tree_heads(tokens, next)
                    .into_iter()
                    .flatten()
                    .map(|name| {
                        if modules.contains(&name) {
                            name
                        } else if let Some(m) = macros.get(&name) {
                            m.clone()
                        } else {
                            ROOT.to_string()
                        }
                    })
                    .collect()
            } else {
                vec![base[0].clone()]
            };
            for to in targets {
                if to == from {
                    continue;
                }
                let mut shown = String::new();
                for (t, _) in &tokens[k..] {
                    match t {
                        Tok::Ident(s) => shown.push_str(s),
                        Tok::Colon2 => shown.push_str("::"),
                        Tok::LBrace => {
                            shown.push_str("{..}");
                            break;
                        }
                        _ => break,
                    }
                }
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .push(Reference {
                        file: f.path.display().to_string(),
                        line: *line,
                        path: shown,
                    });
            }
        }
    }
    graph
}

/// A shortest cycle of the graph (its nodes in order, the first repeated at the end), if any;
/// short cycles name the references to change most directly.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    let mut best: Option<Vec<String>> = None;
    for start in graph.keys() {
        // Breadth-first from `start` until it is reached again.
        let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(n) = queue.pop_front() {
            for next in graph.get(n).into_iter().flat_map(|e| e.keys()) {
                if next == start {
                    let mut cycle = vec![start.clone()];
                    let mut at = n;
                    while at != start {
                        cycle.push(at.clone());
                        at = parent[at];
                    }
                    cycle.push(start.clone());
                    cycle.reverse();
                    if best.as_ref().is_none_or(|b| cycle.len() < b.len()) {
                        best = Some(cycle);
                    }
                    break 'search;
                }
                if !parent.contains_key(next) {
                    parent.insert(next, n);
                    queue.push_back(next);
                }
            }
        }
    }
    best
}

/// Cycles until none is left: each found cycle's closing reference is set aside and the search
/// goes on, so a failing check names every tangle at once, not only the first.
fn all_cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut rest = graph.clone();
    let mut cycles = Vec::new();
    while let Some(cycle) = find_cycle(&rest) {
        let (a, b) = (&cycle[cycle.len() - 2], &cycle[cycle.len() - 1]);
        if let Some(edges) = rest.get_mut(a) {
            edges.remove(b);
        }
        cycles.push(cycle);
    }
    cycles
}

/// The cycle with, for each step, the references that make it.
fn describe(graph: &Graph, cycle: &[String]) -> String {
    let mut s = format!("modules import each other: {}\n", cycle.join(" -> "));
    for pair in cycle.windows(2) {
        let refs = &graph[&pair[0]][&pair[1]];
        let _ = writeln!(s, "  {} -> {}:", pair[0], pair[1]);
        for r in refs.iter().take(4) {
            let _ = writeln!(s, "    {}:{}: {}", r.file, r.line, r.path);
        }
        if refs.len() > 4 {
            let _ = writeln!(s, "    ... and {} more", refs.len() - 4);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
        list.iter()
            .map(|&(path, text)| SourceFile {
                path: PathBuf::from(path),
                module: module_of(Path::new(path)),
                text: text.to_string(),
            })
            .collect()
    }

    fn edges(graph: &Graph, from: &str) -> Vec<String> {
        graph
            .get(from)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Fails with every cycle among the top-level modules of the crate whose sources are in
    /// `dir` (relative to the workspace root).
    fn assert_one_way(dir: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
        let files = read_sources(&src).expect("the sources are readable");
        assert!(
            files.iter().any(|f| f.module.is_empty()),
            "no crate root (main.rs or lib.rs) under {}",
            src.display()
        );
        let graph = module_graph(&files);
        let cycles = all_cycles(&graph);
        let text: Vec<String> = cycles.iter().map(|c| describe(&graph, c)).collect();
        assert!(cycles.is_empty(), "{}", text.concat());
    }

    #[test]
    fn kernel_modules_import_one_way() {
        assert_one_way("kernel/src");
    }

    /// The engine too: its modules (reservoirs, kernels, readouts, the model driver, RWKV, …)
    /// depend one way. Test code counts like any other (a test module that imports its
    /// dependant is a cycle in the test build).
    #[test]
    fn engine_modules_import_one_way() {
        assert_one_way("crates/echos-core/src");
    }

    #[test]
    fn use_groups_nested_paths_and_super_are_followed() {
        let g = module_graph(&files(&[
            ("main.rs", "mod a; mod b; mod c; mod d;"),
            ("a.rs", "use crate::{b::{X, Y}, c};"),
            ("b/mod.rs", "mod inner; fn f() { super::d::g(); }"),
            ("b/inner.rs", "use super::super::c::Z; use super::W;"),
            ("c.rs", "fn f() -> u8 { 1 }"),
            ("d.rs", ""),
        ]));
        assert_eq!(edges(&g, "a"), ["b", "c"]);
        // `super::W` from b/inner.rs stays inside b; `super::super::c` reaches c.
        assert_eq!(edges(&g, "b"), ["c", "d"]);
        assert!(edges(&g, "c").is_empty());
        assert_eq!(edges(&g, ROOT), ["a", "b", "c", "d"]);
    }

    #[test]
    fn comments_strings_and_inline_modules_do_not_count() {
        let g = module_graph(&files(&[
            ("main.rs", "mod a; mod b;"),
            (
                "a.rs",
                "// crate::b::x\n/* crate::b /* nested */ crate::b */\n\
                 const S: &str = \"crate::b::y\"; const R: &str = r#\"crate::b\"#;\n\
                 const C: char = '\"'; fn f<'a>(x: &'a u8) {}\n\
                 mod tests { use super::f; }",
            ),
            ("b.rs", ""),
        ]));
        assert!(edges(&g, "a").is_empty(), "{g:?}");
    }

    #[test]
    fn root_items_and_exported_macros_resolve_to_their_homes() {
        let g = module_graph(&files(&[
            ("main.rs", "mod a; mod b; pub struct Kernel;"),
            (
                "a.rs",
                "#[macro_export]\nmacro_rules! say { () => { $crate::a::f() } }",
            ),
            ("b.rs", "use crate::{say, Kernel}; fn f() {}"),
        ]));
        assert!(edges(&g, "a").is_empty(), "{g:?}");
        assert_eq!(edges(&g, "b"), ["a", ROOT]);
        let cycle = find_cycle(&g).expect("b names a root item: b -> main -> b");
        assert!(cycle.contains(&ROOT.to_string()), "{cycle:?}");
    }

    #[test]
    fn a_loop_through_three_modules_is_a_cycle_and_a_chain_is_not() {
        let chain = module_graph(&files(&[
            ("main.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::X;"),
            ("b.rs", "use crate::c::Y;"),
            ("c.rs", ""),
        ]));
        assert_eq!(find_cycle(&chain), None);
        let looped = module_graph(&files(&[
            ("main.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::X;"),
            ("b.rs", "use crate::c::Y;"),
            ("c.rs", "fn f() { crate::a::g(); }"),
        ]));
        let cycle = find_cycle(&looped).expect("a -> b -> c -> a");
        assert_eq!(cycle, ["a", "b", "c", "a"]);
        let text = describe(&looped, &cycle);
        assert!(text.contains("c.rs:1: crate::a::g"), "{text}");
    }

    #[test]
    fn every_tangle_is_reported_once() {
        let g = module_graph(&files(&[
            ("main.rs", "mod a; mod b; mod c; mod d; mod e;"),
            ("a.rs", "use crate::b::X;"),
            ("b.rs", "use crate::{a, c};"),
            ("c.rs", "use crate::d::Y;"),
            ("d.rs", "use crate::{c::Z, e};"),
            ("e.rs", ""),
        ]));
        let cycles = all_cycles(&g);
        assert_eq!(cycles, [vec!["a", "b", "a"], vec!["c", "d", "c"]]);
    }
}
