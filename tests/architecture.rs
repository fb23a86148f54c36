//! The architecture docs/ARCHITECTURE.md describes, held to the source: its module table
//! (`| `name` | Step | what it holds |`) must list every top-level module of src/, and every
//! `crate::` path in non-test code must keep the rules written under it:
//!
//! - Decide imports no Act, Render or Front;
//! - Load imports no Decide, Act or Render (nor Front);
//! - Render imports no Act or Front;
//! - Model imports nothing but Model, and touches no file;
//! - Act imports no Front;
//! - no cycle between top-level modules.
//!
//! Test code (an inline `#[cfg(test)] mod`, or a file declared by `#[cfg(test)] mod name;`)
//! is exempt. The checker is a function of the table and the sources, so the tests at the
//! end can show it failing on a forbidden import added to the real tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const STEPS: [&str; 6] = ["Front", "Act", "Decide", "Load", "Model", "Render"];

/// What each step may not import.
fn forbidden(from: &str, to: &str) -> bool {
    match from {
        "Decide" => matches!(to, "Act" | "Render" | "Front"),
        "Load" => matches!(to, "Decide" | "Act" | "Render" | "Front"),
        "Render" => matches!(to, "Act" | "Front"),
        "Model" => to != "Model",
        "Act" => to == "Front",
        _ => false,
    }
}

/// A source file: its path under src/ ("load/fetch.rs") and its text.
struct Source {
    path: String,
    text: String,
}

fn read_sources(root: &Path) -> Vec<Source> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<Source>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap();
                out.push(Source {
                    path: relative.to_string_lossy().replace('\\', "/"),
                    text: std::fs::read_to_string(&path).unwrap(),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// The rows of the module table: name to step.
fn table(doc: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut rows = BTreeMap::new();
    let mut problems = Vec::new();
    for (n, line) in doc.lines().enumerate() {
        let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        // "| `name` | Step | what |" splits into ["", "`name`", "Step", "what", ""].
        if cells.len() != 5 || !cells[0].is_empty() || !cells[4].is_empty() {
            continue;
        }
        let Some(name) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        if !STEPS.contains(&cells[2]) {
            continue;
        }
        if cells[3].is_empty() {
            problems.push(format!(
                "ARCHITECTURE.md:{}: `{name}` says nothing of what it holds",
                n + 1
            ));
        }
        if rows
            .insert(name.to_string(), cells[2].to_string())
            .is_some()
        {
            problems.push(format!("ARCHITECTURE.md:{}: `{name}` listed twice", n + 1));
        }
    }
    if rows.is_empty() {
        problems.push("ARCHITECTURE.md has no module table (| `name` | Step | what |)".into());
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// The text with comments, string and char literals blanked (kept as spaces so offsets and
/// line numbers stay), so that a path in a doc comment or a message is not an import.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if b[i] == b'r'
            && (b[i + 1..].starts_with(b"\"") || b[i + 1..].starts_with(b"#"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string: r"..." or r#"..."#.
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let open = i + 1 + hashes;
            if b.get(open) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = b[open + 1..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| open + 1 + p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, (j + 1).min(b.len()));
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('a', '\n', '\u{..}'), not a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p + 1)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 3)
            } else {
                // A multi-byte char: '…' is up to 4 bytes then a quote.
                (2..=5)
                    .find(|&k| {
                        b.get(i + k) == Some(&b'\'')
                            && std::str::from_utf8(&b[i + 1..i + k])
                                .is_ok_and(|s| s.chars().count() == 1)
                    })
                    .map(|k| i + k + 1)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// `code` without its `#[cfg(test)]` items: an inline `mod name { ... }` is blanked; a
/// `mod name;` is returned in the second list (the file it declares is test code too).
fn without_tests(code: &str) -> (String, Vec<String>) {
    let mut out = code.to_string();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|p| from + p) {
        let after = at + "#[cfg(test)]".len();
        let rest = &out[after..];
        let trimmed = rest.trim_start();
        let start = after + (rest.len() - trimmed.len());
        // Further attributes may follow (#[allow(...)]).
        let mut item = start;
        while out[item..].starts_with("#[") {
            let close = out[item..].find(']').map_or(out.len(), |p| item + p + 1);
            let rest = &out[close..];
            item = close + (rest.len() - rest.trim_start().len());
        }
        let head = &out[item..];
        let head = head
            .strip_prefix("pub(crate) ")
            .or_else(|| head.strip_prefix("pub "))
            .unwrap_or(head);
        if let Some(decl) = head.strip_prefix("mod ") {
            let name: String = decl
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let after_name = decl[name.len()..].trim_start();
            if after_name.starts_with(';') {
                test_files.push(name);
                from = after;
                continue;
            }
        }
        // Blank the item: up to its matching close brace, or its semicolon.
        let body_start = out[item..].find(['{', ';']).map_or(out.len(), |p| item + p);
        let end = if out.as_bytes().get(body_start) == Some(&b'{') {
            let mut depth = 0;
            let mut end = out.len();
            for (k, c) in out[body_start..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = body_start + k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            end
        } else {
            body_start + 1
        };
        let blanked: String = out[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..end, &blanked);
        from = end.min(out.len());
    }
    (out, test_files)
}

/// Module path of a file under src/: "load/metadata/mod.rs" is [load, metadata].
fn module_path(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// One import: from a file, at a line, of a top-level module.
#[derive(Debug, Clone)]
struct Import {
    file: String,
    line: usize,
    to: String,
}

/// Every top-level module a file's non-test code names through `crate::`, `super::` that
/// leaves its top-level module, or (in the binary) `keyroll::`.
fn imports(source_path: &str, code: &str, in_binary: bool) -> Vec<Import> {
    let module = module_path(source_path);
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let boundary = |i: usize| {
        i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':')
    };
    let line_of = |i: usize| code[..i].matches('\n').count() + 1;
    // The names right after a prefix: `x` in `crate::x`, each of `a`, `b` in `crate::{a, b::c}`.
    let names_after = |i: usize| -> Vec<String> {
        let rest = code[i..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut names = Vec::new();
            let mut current = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        at_start = false;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        at_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 && at_start {
                    if c.is_alphanumeric() || c == '_' {
                        current.push(c);
                    } else if !current.is_empty() {
                        names.push(std::mem::take(&mut current));
                        at_start = false;
                    }
                }
            }
            if !current.is_empty() {
                names.push(current);
            }
            names
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            vec![name]
        }
    };
    let mut push = |i: usize, names: Vec<String>| {
        for name in names {
            if !name.is_empty() && name != "self" {
                out.push(Import {
                    file: source_path.to_string(),
                    line: line_of(i),
                    to: name,
                });
            }
        }
    };
    // crate::
    let mut from = 0;
    while let Some(p) = code[from..].find("crate::").map(|p| from + p) {
        from = p + 7;
        if !boundary(p) {
            continue;
        }
        let names = names_after(p + 7);
        if in_binary {
            // In the binary, crate:: is main.rs: its own modules.
            push(p, names);
        } else {
            push(p, names);
        }
    }
    // keyroll:: (the binary reaching the library)
    if in_binary {
        let mut from = 0;
        while let Some(p) = code[from..].find("keyroll::").map(|p| from + p) {
            from = p + 9;
            if boundary(p) {
                push(p, names_after(p + 9));
            }
        }
    }
    // super:: chains that climb to the crate root.
    let mut from = 0;
    while let Some(p) = code[from..].find("super::").map(|p| from + p) {
        from = p + 7;
        if !boundary(p) {
            continue;
        }
        let mut ups = 1;
        let mut at = p + 7;
        while code[at..].starts_with("super::") {
            ups += 1;
            at += 7;
        }
        from = at;
        // A file's own module is `module`; `super` from it is its parent. A file that is
        // not a mod.rs is a leaf module (module ends with its own name).
        if ups >= module.len() {
            push(p, names_after(at));
        }
    }
    out
}

/// Everything the checker needs, from the table and the sources.
fn check(doc: &str, sources: &[Source]) -> Vec<String> {
    let rows = match table(doc) {
        Ok(rows) => rows,
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    let lib = sources.iter().find(|s| s.path == "lib.rs");
    let main = sources.iter().find(|s| s.path == "main.rs");
    let declared = |source: Option<&Source>| -> BTreeSet<String> {
        let Some(source) = source else {
            return BTreeSet::new();
        };
        let (code, _) = without_tests(&code_only(&source.text));
        code.lines()
            .filter_map(|l| {
                let l = l.trim();
                let l = l
                    .strip_prefix("pub(crate) ")
                    .or_else(|| l.strip_prefix("pub "))
                    .unwrap_or(l);
                let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
                Some(name.trim().to_string())
            })
            .collect()
    };
    let library: BTreeSet<String> = declared(lib);
    let binary: BTreeSet<String> = declared(main);
    let mut top: BTreeSet<String> = library.union(&binary).cloned().collect();
    if main.is_some() {
        top.insert("main".into());
    }
    if top.len() > 13 {
        problems.push(format!(
            "src/ has {} top-level modules (at most 12 and main): {top:?}",
            top.len()
        ));
    }
    for name in &top {
        if !rows.contains_key(name) {
            problems.push(format!(
                "src/ module `{name}` is not in ARCHITECTURE.md's module table"
            ));
        }
    }
    for name in rows.keys() {
        if !top.contains(name) {
            problems.push(format!(
                "ARCHITECTURE.md lists `{name}`, which src/ does not declare"
            ));
        }
    }

    // Files that are test code: declared by `#[cfg(test)] mod name;`.
    let mut test_files: BTreeSet<String> = BTreeSet::new();
    for source in sources {
        let (_, tests) = without_tests(&code_only(&source.text));
        let dir = match source.path.rsplit_once('/') {
            Some((dir, file))
                if file == "mod.rs" || source.path == "lib.rs" || source.path == "main.rs" =>
            {
                dir.to_string()
            }
            Some((dir, file)) => format!("{dir}/{}", file.trim_end_matches(".rs")),
            None if source.path == "lib.rs" || source.path == "main.rs" => String::new(),
            None => source.path.trim_end_matches(".rs").to_string(),
        };
        for name in tests {
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            test_files.insert(format!("{prefix}{name}.rs"));
            test_files.insert(format!("{prefix}{name}/mod.rs"));
        }
    }

    let mut edges: BTreeMap<String, BTreeMap<String, Import>> = BTreeMap::new();
    for source in sources {
        if source.path == "lib.rs"
            || test_files
                .iter()
                .any(|t| source.path == *t || source.path.starts_with(&t.replace("/mod.rs", "/")))
        {
            continue;
        }
        let from = if source.path == "main.rs" {
            "main".to_string()
        } else {
            module_path(&source.path)[0].clone()
        };
        let in_binary = from == "main" || binary.contains(&from);
        let (code, _) = without_tests(&code_only(&source.text));
        for import in imports(&source.path, &code, in_binary) {
            if import.to == from || !top.contains(&import.to) {
                continue;
            }
            edges
                .entry(from.clone())
                .or_default()
                .entry(import.to.clone())
                .or_insert(import);
        }
        // Model touches no file.
        if rows.get(&from).is_some_and(|s| s == "Model") {
            for needle in [
                "std::fs",
                "fs::",
                "File::",
                "OpenOptions",
                "read_dir",
                ".exists()",
                ".is_file()",
                ".is_dir()",
                "symlink_metadata",
                "canonicalize(",
                "tokio::fs",
            ] {
                for (n, line) in code.lines().enumerate() {
                    if line.contains(needle) {
                        problems.push(format!(
                            "src/{}:{}: `{from}` is Model and touches the file system ({needle})",
                            source.path,
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    for (from, targets) in &edges {
        let Some(from_step) = rows.get(from) else {
            continue;
        };
        for (to, import) in targets {
            let Some(to_step) = rows.get(to) else {
                continue;
            };
            if forbidden(from_step, to_step) {
                problems.push(format!(
                    "src/{}:{}: `{from}` ({from_step}) imports `{to}` ({to_step}), which {from_step} may not",
                    import.file, import.line
                ));
            }
        }
    }
    // Cycles: any module that reaches itself.
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(m) = stack.pop() {
            for next in edges.get(&m).into_iter().flat_map(|t| t.keys()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    for module in edges.keys() {
        if reach(module).contains(module) {
            let through: Vec<&String> = edges[module]
                .keys()
                .filter(|n| reach(n).contains(module))
                .collect();
            let import = &edges[module][through[0]];
            problems.push(format!(
                "import cycle: `{module}` imports `{}` (src/{}:{}), which leads back to `{module}`",
                through[0], import.file, import.line
            ));
        }
    }
    problems
}

fn repository() -> (String, Vec<Source>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    (doc, read_sources(&root.join("src")))
}

#[test]
fn the_source_keeps_the_architecture_the_document_describes() {
    let (doc, sources) = repository();
    let problems = check(&doc, &sources);
    assert!(
        problems.is_empty(),
        "docs/ARCHITECTURE.md and src/ disagree:\n{}",
        problems.join("\n")
    );
}

/// The checker itself, on the real tree with one forbidden line added to a file of each
/// step: it must name the file, the line and the rule.
#[test]
fn a_forbidden_import_added_to_the_tree_fails_the_check() {
    let (doc, sources) = repository();
    let rows = table(&doc).unwrap();
    let module_of = |step: &str| {
        rows.iter()
            .find(|(_, s)| *s == step)
            .map(|(m, _)| m.clone())
    };
    let cases = [
        ("Model", "Load"),
        ("Load", "Decide"),
        ("Decide", "Act"),
        ("Render", "Act"),
        ("Act", "Front"),
    ];
    for (from_step, to_step) in cases {
        let (Some(from), Some(to)) = (module_of(from_step), module_of(to_step)) else {
            panic!("the table has no {from_step} or {to_step} module");
        };
        if to == "main" {
            continue; // main.rs cannot be named by a path; cli is the Front module to import.
        }
        let mut changed: Vec<Source> = sources
            .iter()
            .map(|s| Source {
                path: s.path.clone(),
                text: s.text.clone(),
            })
            .collect();
        let target = changed
            .iter_mut()
            .find(|s| module_path(&s.path).first() == Some(&from) && s.path != "lib.rs")
            .unwrap();
        let path = target.path.clone();
        target
            .text
            .push_str(&format!("\nuse crate::{to}::Something;\n"));
        let problems = check(&doc, &changed);
        assert!(
            problems
                .iter()
                .any(|p| p.contains(&format!("src/{path}:"))
                    && p.contains(&format!("imports `{to}`"))),
            "adding `use crate::{to}` to {path} ({from_step}) was not caught: {problems:?}"
        );
    }
    // A comment, a string or test code naming a forbidden module is not an import.
    let mut changed: Vec<Source> = sources
        .iter()
        .map(|s| Source {
            path: s.path.clone(),
            text: s.text.clone(),
        })
        .collect();
    let model = module_of("Model").unwrap();
    let act = module_of("Act").unwrap();
    let target = changed
        .iter_mut()
        .find(|s| module_path(&s.path).first() == Some(&model))
        .unwrap();
    target.text.push_str(&format!(
        "\n// crate::{act}::x\nconst _S: &str = \"crate::{act}::x\";\n#[cfg(test)]\nmod tests {{\n    use crate::{act}::x;\n}}\n"
    ));
    assert!(
        check(&doc, &changed).is_empty(),
        "{:?}",
        check(&doc, &changed)
    );
    // Model reading a file is caught.
    let target = changed
        .iter_mut()
        .find(|s| module_path(&s.path).first() == Some(&model))
        .unwrap();
    target
        .text
        .push_str("\nfn peek() { let _ = std::fs::read(\"x\"); }\n");
    assert!(
        check(&doc, &changed)
            .iter()
            .any(|p| p.contains("touches the file system"))
    );
}

#[test]
fn an_unlisted_module_or_a_cycle_fails_the_check() {
    let (doc, sources) = repository();
    let mut changed: Vec<Source> = sources
        .iter()
        .map(|s| Source {
            path: s.path.clone(),
            text: s.text.clone(),
        })
        .collect();
    let lib = changed.iter_mut().find(|s| s.path == "lib.rs").unwrap();
    lib.text.push_str("\npub mod stray;\n");
    changed.push(Source {
        path: "stray.rs".into(),
        text: String::new(),
    });
    assert!(
        check(&doc, &changed)
            .iter()
            .any(|p| p.contains("`stray` is not in ARCHITECTURE.md"))
    );

    // Two Front modules importing each other: allowed by the steps, refused as a cycle.
    let doc = format!("{doc}\n| `stray` | Front | a test's module |\n");
    let stray = changed.iter_mut().find(|s| s.path == "stray.rs").unwrap();
    stray.text = "use crate::harness::x;\n".into();
    let harness = changed.iter_mut().find(|s| s.path == "harness.rs").unwrap();
    harness.text.push_str("\nuse crate::stray::y;\n");
    assert!(
        check(&doc, &changed)
            .iter()
            .any(|p| p.contains("import cycle")),
        "{:?}",
        check(&doc, &changed)
    );
}

/// Every non-test function of `code` (comments, strings and test code already blanked):
/// (name, first line, number of lines from `fn` to its closing brace).
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("fn ").map(|p| from + p) {
        from = p + 3;
        if p > 0 && (bytes[p - 1].is_ascii_alphanumeric() || bytes[p - 1] == b'_') {
            continue;
        }
        let name: String = code[p + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body: the first `{` outside parentheses, angle brackets and brackets, unless a
        // `;` comes first (a declaration in a trait).
        let mut depth = 0i32;
        let mut body = None;
        for (k, c) in code[p..].char_indices() {
            match c {
                '(' | '[' | '<' => depth += 1,
                ')' | ']' => depth -= 1,
                '>' if !code[..p + k].ends_with('-') && !code[..p + k].ends_with('=') => depth -= 1,
                ';' if depth <= 0 => break,
                '{' if depth <= 0 => {
                    body = Some(p + k);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = body else { continue };
        let mut level = 0;
        let mut close = None;
        for (k, c) in code[open..].char_indices() {
            match c {
                '{' => level += 1,
                '}' => {
                    level -= 1;
                    if level == 0 {
                        close = Some(open + k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        let first = code[..p].matches('\n').count() + 1;
        let last = code[..close].matches('\n').count() + 1;
        out.push((name, first, last - first + 1));
        // Nested functions are counted in their own right too: go on inside the body.
    }
    out
}

/// The shape issue 27 set: at most 12 top-level modules (and main.rs), main.rs at most 250
/// lines with no function over 60, and no function over 100 lines outside tests.
#[test]
fn the_front_is_thin_and_no_function_is_too_long() {
    let (_, sources) = repository();
    let mut problems = Vec::new();
    for source in &sources {
        let (code, _) = without_tests(&code_only(&source.text));
        let limit = if source.path == "main.rs" { 60 } else { 100 };
        for (name, line, length) in functions(&code) {
            if length > limit {
                problems.push(format!(
                    "src/{}:{line}: fn {name} is {length} lines (at most {limit})",
                    source.path
                ));
            }
        }
        if source.path == "main.rs" {
            let lines = source.text.lines().count();
            if lines > 250 {
                problems.push(format!("src/main.rs is {lines} lines (at most 250)"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
