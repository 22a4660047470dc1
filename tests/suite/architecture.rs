//! The layers as `src/lib.rs` documents them, checked over the source (as ArchUnit does
//! for Java): a module uses only the layers below its own, and no file uses a file that
//! uses it back, directly or through others.
//!
//! A file "uses" another when it names a path into it: `use crate::net::probe::...`,
//! `super::cancel::Cancel`, or a child module's items (`admit::admit(...)` in
//! `run/mod.rs`). Items re-exported by a parent `mod.rs` are imported from the file
//! that defines them, so that the parent's re-export does not close a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom, as lib.rs lists them.
const LAYERS: [&str; 5] = ["cli", "run", "net", "report", "proto"];

/// A module path (`["net", "probe"]`) and the file that holds it.
type Modules = BTreeMap<Vec<String>, String>;

/// This crate's `src/`, or another tree's (`HEADPROBE_ARCH_SRC=/old/checkout/src`), to
/// show what the checks say of it.
fn src() -> PathBuf {
    match std::env::var_os("HEADPROBE_ARCH_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// Every `.rs` file under `src/` but `main.rs` (the binary, above every layer), by
/// module path.
fn modules(root: &Path) -> Modules {
    let mut out = Modules::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == "main.rs" {
                continue;
            }
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(String::from)
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            out.insert(module, rel);
        }
    }
    out
}

/// The layer a file belongs to: its index in `LAYERS`, or `None` for `lib.rs`.
fn layer(module: &[String]) -> Option<usize> {
    let first = module.first()?;
    Some(
        LAYERS
            .iter()
            .position(|l| l == first)
            .unwrap_or_else(|| panic!("src/{first} is in no layer of lib.rs's list")),
    )
}

/// Source text without comments, strings and character literals (so that neither a
/// path in a doc comment nor a `'{'` counts).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !is_ident(b[i - 1])) =>
            {
                // A raw string: r"..." or r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                j += 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // A character literal ('x', '\n', '\u{7f}', b'{') or a lifetime ('a).
                let rest = &b[i + 1..];
                let len = if rest.first() == Some(&b'\\') {
                    rest.iter().skip(1).position(|&c| c == b'\'').map(|p| p + 2)
                } else {
                    std::str::from_utf8(&rest[..rest.len().min(5)])
                        .ok()
                        .or_else(|| std::str::from_utf8(&rest[..rest.len().min(1)]).ok())
                        .and_then(|s| s.chars().next())
                        .map(char::len_utf8)
                        .filter(|&n| rest.get(n) == Some(&b'\''))
                };
                match len {
                    Some(n) => {
                        i += n + 2;
                        out.push_str("' '");
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[derive(Debug, PartialEq, Clone)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<Tok> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_ident(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push(Tok::Ident(code[start..i].to_string()));
            continue;
        }
        out.push(match c {
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 1;
                Tok::Colons
            }
            b'{' => Tok::Open,
            b'}' => Tok::Close,
            b',' => Tok::Comma,
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => Tok::Other,
        });
        i += 1;
    }
    out
}

/// The paths named from token `i` on (`a::b::{c, d::e}` gives `a::b::c` and
/// `a::b::d::e`), and the index after them.
fn paths_at(toks: &[Tok], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i) {
            Some(Tok::Ident(name)) => {
                path.push(name.clone());
                i += 1;
            }
            Some(Tok::Open) if path.len() > prefix.len() || !prefix.is_empty() => {
                // A use group: each item is a path under `path`.
                i += 1;
                loop {
                    match toks.get(i) {
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::Ident(_)) | Some(Tok::Open) => i = paths_at(toks, i, &path, out),
                        _ => return i + 1,
                    }
                }
            }
            _ => break,
        }
        if toks.get(i) == Some(&Tok::Colons) {
            i += 1;
        } else {
            break;
        }
    }
    out.push(path);
    i
}

/// The files that `module`'s file uses.
fn uses(module: &[String], text: &str, modules: &Modules) -> BTreeSet<String> {
    let toks = tokens(&code_only(text));
    let own = &modules[module];
    let mut out = BTreeSet::new();
    // Inline modules (`mod tests { ... }`) open at a brace depth.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => {
                depth += 1;
                i += 1;
                continue;
            }
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                i += 1;
                continue;
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                }
                i += 1;
                continue;
            }
            Tok::Ident(_) if toks.get(i + 1) == Some(&Tok::Colons) => {}
            _ => {
                i += 1;
                continue;
            }
        }
        // Not the tail of a longer path (`x::crate` cannot be; `a::b` is taken whole).
        if i > 0 && toks[i - 1] == Tok::Colons {
            i += 1;
            continue;
        }
        let mut found = Vec::new();
        let next = paths_at(&toks, i, &[], &mut found);
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        for path in found {
            if let Some(target) = resolve(&path, &here, modules) {
                if &target != own {
                    out.insert(target);
                }
            }
        }
        i = next.max(i + 1);
    }
    out
}

/// The file a path names, or `None` for paths outside the crate (std, other crates).
fn resolve(path: &[String], here: &[String], modules: &Modules) -> Option<String> {
    let mut base: Vec<String>;
    let mut rest = path;
    match path.first()?.as_str() {
        "crate" => {
            base = Vec::new();
            rest = &path[1..];
        }
        "self" => {
            base = here.to_vec();
            rest = &path[1..];
        }
        "super" => {
            base = here.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        child => {
            let mut candidate = here.to_vec();
            candidate.push(child.to_string());
            if !modules.contains_key(&candidate) {
                return None;
            }
            base = here.to_vec();
        }
    }
    // The longest prefix that is a file.
    let mut best = modules.get(&base).cloned();
    for seg in rest {
        base.push(seg.clone());
        match modules.get(&base) {
            Some(file) => best = Some(file.clone()),
            None => break,
        }
    }
    best
}

/// Every file's uses, by file.
fn graph() -> (Modules, BTreeMap<String, BTreeSet<String>>) {
    let root = src();
    let modules = modules(&root);
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        edges.insert(file.clone(), uses(module, &text, &modules));
    }
    (modules, edges)
}

#[test]
fn lib_rs_lists_the_layers_in_this_order() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let listed: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! - `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert_eq!(listed, LAYERS, "lib.rs's layer list and this test disagree");
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let (modules, edges) = graph();
    let layer_of: BTreeMap<&String, Option<usize>> =
        modules.iter().map(|(m, f)| (f, layer(m))).collect();
    let mut wrong = Vec::new();
    for (file, used) in &edges {
        for target in used {
            let (from, to) = (layer_of[file], layer_of[target]);
            let upward = match (from, to) {
                // lib.rs runs the layers; nothing uses it.
                (_, None) => true,
                (None, _) => false,
                (Some(a), Some(b)) => b < a,
            };
            if upward {
                wrong.push(format!("src/{file} uses src/{target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "these use a layer above their own ({}):\n{}",
        LAYERS.join(" > "),
        wrong.join("\n")
    );
}

#[test]
fn no_file_uses_a_file_that_uses_it_back() {
    let (_, edges) = graph();
    let mut loops = BTreeSet::new();
    // From each file, a walk along uses; a way back to the start is a loop.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((file, trail)) = stack.pop() {
            for next in edges.get(&file).into_iter().flatten() {
                if next == start {
                    // Each loop once, written from its smallest file.
                    let mut ring = trail.clone();
                    let min = (0..ring.len()).min_by_key(|&i| &ring[i]).unwrap();
                    ring.rotate_left(min);
                    loops.insert(ring);
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    let shown: Vec<String> = loops
        .iter()
        .map(|ring| {
            let mut names: Vec<String> = ring.iter().map(|f| format!("src/{f}")).collect();
            names.push(names[0].clone());
            names.join(" -> ")
        })
        .collect();
    assert!(
        shown.is_empty(),
        "files that use each other:\n{}",
        shown.join("\n")
    );
}

#[test]
fn the_reader_finds_paths_and_skips_comments_and_strings() {
    let mut modules = Modules::new();
    for (m, f) in [
        (vec!["run"], "run/mod.rs"),
        (vec!["run", "admit"], "run/admit.rs"),
        (vec!["run", "cancel"], "run/cancel.rs"),
        (vec!["net"], "net/mod.rs"),
        (vec!["net", "probe"], "net/probe.rs"),
        (vec!["cli"], "cli/mod.rs"),
        (vec!["proto"], "proto/mod.rs"),
    ] {
        modules.insert(m.into_iter().map(String::from).collect(), f.to_string());
    }
    let text = r##"
        use crate::net::{probe::{self, plan}, LineSink};
        use super::cancel::Cancel;
        // use crate::cli::Args;
        /* crate::proto::X */
        const S: &str = "crate::cli::Args";
        const R: &str = r#"crate::cli::Args"#;
        const C: char = '{';
        fn f<'a>(x: &'a str) { admit::admit(); }
        mod tests { use super::*; fn g() { super::super::cancel::x(); } }
    "##;
    let module: Vec<String> = vec!["run".into(), "admit".into()];
    modules.insert(module.clone(), "run/admit.rs".into());
    let found = uses(&module, text, &modules);
    let want: BTreeSet<String> = ["net/mod.rs", "net/probe.rs", "run/cancel.rs"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, want);
}
