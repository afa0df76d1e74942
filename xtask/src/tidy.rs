//! `tidy`: checks over the source tree and the documents, run as plain
//! tests (`cargo test --workspace`, or `cargo test -p xtask tidy`), in the
//! manner of rust-analyzer's `xtask/src/tidy.rs`. Each fails naming every
//! offender:
//!
//! - no import circle between two source files of one crate
//!   ([`imports`]: `use crate::`, `use super::`, `use self::` and a child
//!   module's name, groups and `pub use` included, loops of any length);
//! - every `.rs` file under `crates/`, `xtask/` and `fuzz/` starts with a
//!   `//!` header;
//! - no such file is over [`MAX_LINES`] lines;
//! - every repository path `README.md` and `docs/*.md` name exists
//!   ([`doc_paths`]).

mod doc_paths;
mod imports;
mod lexer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 650;

/// The directories that hold the project's Rust sources.
const SOURCE_DIRS: &[&str] = &["crates", "xtask", "fuzz"];

/// The repository's root: the parent of xtask's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
        .to_path_buf()
}

/// What `.gitignore` keeps out of the repository, as anchored paths
/// (`target`, `fuzz/corpus`): build output and local data, not sources.
fn ignored(root: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(root.join(".gitignore")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('/'))
        .map(|l| PathBuf::from(l.trim_end_matches('/')))
        .collect()
}

/// Every file under `dir` (relative to `root`) with extension `ext`,
/// leaving out `target` directories and what `.gitignore` ignores.
fn files(root: &Path, dir: &str, ext: &str) -> Vec<PathBuf> {
    let skip = ignored(root);
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::from(dir)];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&d)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = d.join(e.file_name());
            if skip.contains(&rel) || e.file_name() == "target" {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(rel);
            } else if rel.extension().is_some_and(|x| x == ext) {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    SOURCE_DIRS
        .iter()
        .flat_map(|d| files(root, d, "rs"))
        .collect()
}

/// The crate roots of the package in `dir`: its library, binaries,
/// tests, benches, examples and fuzz targets.
fn crate_roots(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for f in ["src/lib.rs", "src/main.rs"] {
        if root.join(dir).join(f).is_file() {
            roots.push(dir.join(f));
        }
    }
    for sub in ["src/bin", "tests", "benches", "examples", "fuzz_targets"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = dir.join(sub).join(e.file_name());
            if rel.extension().is_some_and(|x| x == "rs") {
                roots.push(rel);
            } else if root.join(&rel).join("main.rs").is_file() {
                roots.push(rel.join("main.rs"));
            }
        }
    }
    roots.sort();
    roots
}

/// Every package directory: `crates/*`, `xtask`, `fuzz`.
fn packages(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| Path::new("crates").join(e.file_name()))
                .collect()
        })
        .unwrap_or_default();
    dirs.extend(["xtask", "fuzz"].map(PathBuf::from));
    dirs.retain(|d| root.join(d).join("Cargo.toml").is_file());
    dirs.sort();
    dirs
}

/// Fails with every finding, one per line, or passes on none.
fn report(what: &str, findings: &[String]) {
    assert!(
        findings.is_empty(),
        "{} {what}:\n{}",
        findings.len(),
        findings.join("\n")
    );
}

#[test]
fn no_import_circle_between_files_of_one_crate() {
    let root = project_root();
    let read = |p: &Path| std::fs::read_to_string(root.join(p)).ok();
    let mut seen = BTreeSet::new();
    let mut findings = Vec::new();
    for package in packages(&root) {
        for krate in crate_roots(&root, &package) {
            for circle in imports::circles(&krate, &read) {
                // A file in several crates (a test's shared module)
                // reports its circle once.
                if seen.insert(circle.files.clone()) {
                    findings.push(circle.to_string());
                }
            }
        }
    }
    report("import circles", &findings);
}

#[test]
fn every_rust_file_starts_with_a_doc_header() {
    let root = project_root();
    let mut findings = Vec::new();
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
        let first = text.lines().find(|l| !l.trim().is_empty());
        if !first.is_some_and(|l| l.trim_start().starts_with("//!")) {
            findings.push(format!("{}: no `//!` header", file.display()));
        }
    }
    report("files without a header", &findings);
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let root = project_root();
    let mut findings = Vec::new();
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            findings.push(format!(
                "{}: {lines} lines (at most {MAX_LINES})",
                file.display()
            ));
        }
    }
    report("files too long", &findings);
}

#[test]
fn every_path_the_documents_name_exists() {
    let root = project_root();
    let top_level: BTreeSet<String> = std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "target" && n != ".git")
                .collect()
        })
        .unwrap_or_default();
    let skip = ignored(&root);
    let mut documents = vec![PathBuf::from("README.md")];
    documents.extend(files(&root, "docs", "md"));
    let mut findings = Vec::new();
    for doc in documents {
        let Ok(text) = std::fs::read_to_string(root.join(&doc)) else {
            findings.push(format!("{}: cannot be read", doc.display()));
            continue;
        };
        let base = doc.parent().unwrap_or(Path::new("")).to_path_buf();
        for p in doc_paths::doc_paths(&text, &top_level) {
            let path = if p.link {
                base.join(&p.path)
            } else {
                PathBuf::from(&p.path)
            };
            if skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            if !root.join(&path).exists() {
                findings.push(format!(
                    "{}:{}: `{}` does not exist",
                    doc.display(),
                    p.line,
                    p.path
                ));
            }
        }
    }
    report("paths in the documents that do not exist", &findings);
}
