//! The crate's layers point one way (README "Architecture", `src/lib.rs`): a module may
//! use only modules of a lower layer. This test reads every `crate::…` path in `src/`
//! (comments left out) and fails on a use that points up or sideways, or on a module
//! that is not in the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer: lower numbers are lower layers.
const LAYERS: &[(&str, u8)] = &[
    // 0 pure core: the Sensu model, then the formats and schedules built on it.
    ("proto", 0),
    ("scrape", 1),
    ("schedule", 1),
    // shared services.
    ("config", 2),
    ("telemetry", 2),
    ("pki", 2),
    ("logging", 2),
    ("serve", 2),
    // services.
    ("checks", 3),
    ("transport", 3),
    // processes.
    ("api", 4),
    ("client", 4),
    ("scale", 4),
    // front ends.
    ("cli", 5),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/` and every Rust file under it.
fn source_files() -> (PathBuf, Vec<PathBuf>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    (src, files)
}

/// A line's code: what comes before a `//` comment.
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or_default()
}

/// The top-level module a file belongs to (`src/client/fleet.rs` → `client`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

/// The modules a file's code names as `crate::NAME`, with a line number each.
fn crate_references(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = code(line);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `some_crate::`
            }
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                found.push((n + 1, name));
            }
        }
        // `use crate::{a, b}` groups.
        if let Some(group) = code.split("crate::{").nth(1) {
            for item in group.split(['}', ',']) {
                let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if layer(&name).is_some() {
                    found.push((n + 1, name));
                }
            }
        }
    }
    found
}

#[test]
fn layers_point_one_way() {
    let (src, files) = source_files();
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        *seen.entry(module.clone()).or_default() += 1;
        let Some(own) = layer(&module) else {
            problems.push(format!("{}: module `{module}` has no layer in tests/architecture.rs", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in crate_references(&text) {
            if used == module || used == "CONCIERGE_VERSION" {
                continue;
            }
            match layer(&used) {
                Some(theirs) if theirs < own => {}
                Some(theirs) => problems.push(format!(
                    "{}:{line}: `{module}` (layer {own}) uses `{used}` (layer {theirs}); layers may only use lower ones",
                    file.display()
                )),
                None => problems.push(format!("{}:{line}: `crate::{used}` is not a known module", file.display())),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for (module, _) in LAYERS {
        assert!(seen.contains_key(*module), "module {module} is in the table but not in src/");
    }
}

#[test]
fn lapin_stays_in_transport() {
    let (src, files) = source_files();
    let outside: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("transport")))
        .filter(|f| std::fs::read_to_string(f).unwrap().lines().any(|l| code(l).contains("lapin::")))
        .map(|f| f.display().to_string())
        .collect();
    assert!(outside.is_empty(), "lapin used outside src/transport: {outside:?}");
}

#[test]
fn the_module_map_lists_every_module() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for (module, _) in LAYERS {
        assert!(lib.contains(&format!("pub mod {module};")), "lib.rs does not declare {module}");
        assert!(lib.contains(&format!("[`{module}`]")), "lib.rs's module map does not describe {module}");
    }
}

#[test]
fn unsafe_code_only_in_the_reviewed_exception() {
    let (src, files) = source_files();
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = code(line);
            // Crate-level lint attributes (`#![deny(unsafe_code)]`) are not unsafe code.
            if code.contains("unsafe") && !code.trim_start().starts_with("#![") {
                found.push((file.strip_prefix(&src).unwrap().display().to_string(), n + 1));
            }
        }
    }
    // `#[allow(unsafe_code)]` and the `unsafe` block of `malloc_trim`, nothing else.
    assert!(
        found.iter().all(|(file, _)| file == "client/memory.rs"),
        "unsafe code outside client/memory.rs: {found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(std::fs::read_to_string(src.join("lib.rs")).unwrap().contains("#![deny(unsafe_code)]"));
}

#[test]
fn references_are_found() {
    let text = "use crate::proto::Object; // crate::api in a comment\nuse crate::{checks, config::X};\nlet x = other_crate::y;";
    let names: Vec<String> = crate_references(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["proto", "checks", "config"]);
}
