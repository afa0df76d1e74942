//! The import-circle check: within one crate, no two source files may
//! import from each other, directly or around a longer loop.
//!
//! A crate is read from its root file (`src/lib.rs`, `src/main.rs`, a test,
//! a bench, an example) through its `mod` declarations (`a/b.rs` or
//! `a/b/mod.rs`, or a `#[path]`), inline `mod x { ... }` blocks included.
//! An import is a `use` item (`pub use` and `pub(crate) use` too) whose
//! path starts with `crate::`, `super::`, `self::` or the name of a child
//! module (`use net::Net;` in the file that declares `mod net;`); each
//! path of a `use a::{b, c::d}` group counts. Such a path written in the
//! code (`crate::listener::Slot` as a type, `flows::run(..)` as a call) is
//! an import too. It names the file of the deepest module the path
//! reaches. A file's own inline modules (`mod
//! tests { use super::*; }`) are the file itself, so they add nothing.
//!
//! The files and the imports between them form a graph; every strongly
//! connected part of more than one file is one circle, reported once with
//! the imports that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::lexer::{Spanned, Token, tokens};

/// One import from a file to another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Import {
    pub(crate) from: PathBuf,
    pub(crate) line: usize,
    pub(crate) to: PathBuf,
}

/// A set of files that import each other in a loop, and the imports
/// between them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Circle {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) imports: Vec<Import>,
}

impl std::fmt::Display for Circle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        write!(f, "import circle between {}:", files.join(", "))?;
        for i in &self.imports {
            write!(
                f,
                "\n    {}:{} imports {}",
                i.from.display(),
                i.line,
                i.to.display()
            )?;
        }
        Ok(())
    }
}

/// A `use` path as written, and where.
struct UsePath {
    /// The module (inline modules included) the `use` is in.
    module: Vec<String>,
    segments: Vec<String>,
    line: usize,
}

/// One crate's modules: module path to the file that holds it; the paths
/// its files name; and the names `use` items bind in each module (module,
/// name) to the path they came from (an index into `uses`).
#[derive(Default)]
struct Crate {
    modules: BTreeMap<Vec<String>, PathBuf>,
    uses: Vec<(PathBuf, UsePath)>,
    bindings: BTreeMap<(Vec<String>, String), usize>,
}

/// The circles of the crate whose root file is `root`; `read` gives a
/// file's text (`None`: no such file).
pub(crate) fn circles(root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Vec<Circle> {
    let mut krate = Crate::default();
    load(&mut krate, Vec::new(), root, true, read);
    let mut imports = BTreeSet::new();
    for (file, u) in &krate.uses {
        if let Some(to) = resolve(&krate, u, 0)
            && &to != file
        {
            imports.insert(Import {
                from: file.clone(),
                line: u.line,
                to,
            });
        }
    }
    strongly_connected(&imports)
}

/// Reads the module `path` from `file` and every module it declares.
/// `mod_rs`: the file's children live in its own directory (a crate root,
/// `mod.rs`, or a `#[path]` file) rather than in `a/b/` beside `a/b.rs`.
fn load(
    krate: &mut Crate,
    path: Vec<String>,
    file: &Path,
    mod_rs: bool,
    read: &dyn Fn(&Path) -> Option<String>,
) {
    if krate.modules.values().any(|f| f == file) {
        // A file reached twice (a shared #[path] file): read once.
        krate.modules.insert(path, file.to_path_buf());
        return;
    }
    let Some(text) = read(file) else { return };
    krate.modules.insert(path.clone(), file.to_path_buf());
    let dir = if mod_rs {
        file.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        file.with_extension("")
    };
    let t = tokens(&text);
    let ident = |i: usize| match t.get(i).map(|s| &s.token) {
        Some(Token::Ident(w)) => Some(w.as_str()),
        _ => None,
    };
    let punct =
        |i: usize, c: char| matches!(t.get(i).map(|s| &s.token), Some(Token::Punct(p)) if *p == c);
    // Inline modules open here: (brace depth inside, name).
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_inline: Option<String> = None;
    let mut path_attr: Option<String> = None;
    let mut i = 0;
    while i < t.len() {
        match &t[i].token {
            Token::Punct('{') => {
                depth += 1;
                if let Some(name) = pending_inline.take() {
                    inline.push((depth, name));
                }
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(d, _)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Token::Punct('#') if punct(i + 1, '[') && ident(i + 2) == Some("path") => {
                if let Some(Spanned {
                    token: Token::Str(p),
                    ..
                }) = t.get(i + 4)
                {
                    path_attr = Some(p.clone());
                }
            }
            Token::Ident(w) if w == "mod" => {
                if let Some(name) = ident(i + 1) {
                    let mut child = path.clone();
                    child.extend(inline.iter().map(|(_, n)| n.clone()));
                    child.push(name.to_string());
                    if punct(i + 2, '{') {
                        krate.modules.insert(child, file.to_path_buf());
                        pending_inline = Some(name.to_string());
                    } else if punct(i + 2, ';') {
                        let mut base = dir.clone();
                        base.extend(inline.iter().map(|(_, n)| n.as_str()));
                        let (target, target_mod_rs) = match path_attr.take() {
                            // Outside inline modules, relative to the
                            // file's own directory.
                            Some(p) if inline.is_empty() => {
                                (file.parent().unwrap_or(Path::new("")).join(p), true)
                            }
                            Some(p) => (base.join(p), true),
                            None => {
                                let flat = base.join(format!("{name}.rs"));
                                if read(&flat).is_some() {
                                    (flat, false)
                                } else {
                                    (base.join(name).join("mod.rs"), true)
                                }
                            }
                        };
                        load(krate, child, &target, target_mod_rs, read);
                    }
                }
            }
            Token::Ident(w) if w == "use" && starts_item(&t, i) && !punct(i + 1, '<') => {
                let mut module = path.clone();
                module.extend(inline.iter().map(|(_, n)| n.clone()));
                let mut paths = Vec::new();
                let end = use_tree(&t, i + 1, Vec::new(), &mut paths);
                for (segments, line, bound) in paths {
                    if let Some(name) = bound {
                        krate
                            .bindings
                            .insert((module.clone(), name), krate.uses.len());
                    }
                    krate.uses.push((
                        file.to_path_buf(),
                        UsePath {
                            module: module.clone(),
                            segments,
                            line,
                        },
                    ));
                }
                i = end;
                continue;
            }
            // A path in the code (`crate::listener::Slot` in a type,
            // `super::Plan` in a signature) depends on its file as much as
            // a `use` does. Not `$crate::` in a macro: that names the
            // crate the macro expands in.
            Token::Ident(w)
                if matches!(w.as_str(), "crate" | "super" | "self")
                    && matches!(t.get(i + 1).map(|s| &s.token), Some(Token::PathSep))
                    && !matches!(
                        i.checked_sub(1).and_then(|p| t.get(p)).map(|s| &s.token),
                        Some(Token::PathSep | Token::Punct('$'))
                    ) =>
            {
                let mut segments = vec![w.clone()];
                let mut j = i + 1;
                while matches!(t.get(j).map(|s| &s.token), Some(Token::PathSep)) {
                    let Some(next) = ident(j + 1) else { break };
                    segments.push(next.to_string());
                    j += 2;
                }
                let mut module = path.clone();
                module.extend(inline.iter().map(|(_, n)| n.clone()));
                krate.uses.push((
                    file.to_path_buf(),
                    UsePath {
                        module,
                        segments,
                        line: t[i].line,
                    },
                ));
                i = j;
                continue;
            }
            Token::Punct(';') => path_attr = None,
            _ => {}
        }
        i += 1;
    }
}

/// Whether the `use` at `i` begins an item: at the start, after `;`, a
/// brace, an attribute's `]`, or a visibility (`pub`, `pub(crate)`).
fn starts_item(t: &[Spanned], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).and_then(|p| t.get(p)) else {
        return true;
    };
    match &prev.token {
        Token::Punct(';' | '{' | '}' | ']') => true,
        Token::Ident(w) => w == "pub",
        // `pub(crate) use`, `pub(super) use`, `pub(in a::b) use`.
        Token::Punct(')') => true,
        _ => false,
    }
}

/// One path of a use tree, its line, and the name it binds (`None` for a
/// glob).
type UseLeaf = (Vec<String>, usize, Option<String>);

/// Parses one use tree starting at `i` under `prefix`; pushes each full
/// path (a glob or a rename as the path before it); returns the index
/// after the tree (after the `;` at the top level).
fn use_tree(t: &[Spanned], mut i: usize, prefix: Vec<String>, out: &mut Vec<UseLeaf>) -> usize {
    let mut segments = prefix;
    let line = t.get(i).map_or(0, |s| s.line);
    let mut bound: Option<String> = None;
    let mut glob = false;
    loop {
        match t.get(i).map(|s| &s.token) {
            Some(Token::Ident(w)) if w == "as" => {
                if let Some(Spanned {
                    token: Token::Ident(alias),
                    ..
                }) = t.get(i + 1)
                {
                    bound = Some(alias.clone());
                }
                i += 2;
            }
            Some(Token::Ident(w)) => {
                if w != "self" {
                    bound = Some(w.clone());
                }
                segments.push(w.clone());
                i += 1;
            }
            Some(Token::PathSep) => i += 1,
            Some(Token::Punct('*')) => {
                glob = true;
                i += 1;
            }
            Some(Token::Punct('{')) => {
                i += 1;
                loop {
                    match t.get(i).map(|s| &s.token) {
                        None => return i,
                        Some(Token::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        Some(Token::Punct(',')) => i += 1,
                        _ => i = use_tree(t, i, segments.clone(), out),
                    }
                }
                return skip_end(t, i);
            }
            _ => {
                out.push((segments, line, bound.filter(|_| !glob)));
                return skip_end(t, i);
            }
        }
    }
}

/// Past a `;` that ends the item (but not past the `,` or `}` of a group).
fn skip_end(t: &[Spanned], i: usize) -> usize {
    match t.get(i).map(|s| &s.token) {
        Some(Token::Punct(';')) => i + 1,
        _ => i,
    }
}

/// The file a use path names: the file of the deepest module it reaches,
/// or, where the next name is one that module imports with a `use` (a
/// re-export such as `pub use hash::BlockHash` in `lib.rs`), the file that
/// import names; `None` for another crate's path.
fn resolve(krate: &Crate, u: &UsePath, depth: usize) -> Option<PathBuf> {
    let mut segments = u.segments.iter().map(String::as_str).peekable();
    let mut module: Vec<String> = match segments.peek().copied()? {
        "crate" => {
            segments.next();
            Vec::new()
        }
        "self" => {
            segments.next();
            u.module.clone()
        }
        "super" => {
            let mut m = u.module.clone();
            while segments.peek() == Some(&"super") {
                segments.next();
                m.pop()?;
            }
            m
        }
        first => {
            let mut child = u.module.clone();
            child.push(first.to_string());
            if !krate.modules.contains_key(&child) {
                return None;
            }
            u.module.clone()
        }
    };
    for s in segments {
        if s == "self" {
            continue;
        }
        let mut deeper = module.clone();
        deeper.push(s.to_string());
        if !krate.modules.contains_key(&deeper) {
            let import = krate.bindings.get(&(module.clone(), s.to_string()));
            if let Some(&index) = import
                && depth < 8
                && let Some((_, through)) = krate.uses.get(index)
                && let Some(file) = resolve(krate, through, depth + 1)
            {
                return Some(file);
            }
            break;
        }
        module = deeper;
    }
    krate.modules.get(&module).cloned()
}

/// Tarjan's strongly connected components of the import graph, those of
/// more than one file, each with the imports inside it.
fn strongly_connected(imports: &BTreeSet<Import>) -> Vec<Circle> {
    let mut edges: BTreeMap<&Path, Vec<&Path>> = BTreeMap::new();
    for i in imports {
        edges.entry(&i.from).or_default().push(&i.to);
        edges.entry(&i.to).or_default();
    }
    let nodes: Vec<&Path> = edges.keys().copied().collect();
    let mut state = Tarjan {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        parts: Vec::new(),
    };
    for n in nodes {
        if !state.index.contains_key(n) {
            state.visit(n, &edges);
        }
    }
    let mut circles: Vec<Circle> = state
        .parts
        .into_iter()
        .filter(|p| p.len() > 1)
        .map(|mut files| {
            files.sort();
            let inside: BTreeSet<&Path> = files.iter().map(PathBuf::as_path).collect();
            let imports = imports
                .iter()
                .filter(|i| inside.contains(i.from.as_path()) && inside.contains(i.to.as_path()))
                .cloned()
                .collect();
            Circle { files, imports }
        })
        .collect();
    circles.sort();
    circles
}

struct Tarjan<'a> {
    index: BTreeMap<&'a Path, usize>,
    low: BTreeMap<&'a Path, usize>,
    stack: Vec<&'a Path>,
    on_stack: BTreeSet<&'a Path>,
    next: usize,
    parts: Vec<Vec<PathBuf>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, n: &'a Path, edges: &BTreeMap<&'a Path, Vec<&'a Path>>) {
        self.index.insert(n, self.next);
        self.low.insert(n, self.next);
        self.next += 1;
        self.stack.push(n);
        self.on_stack.insert(n);
        for &m in edges.get(n).map(Vec::as_slice).unwrap_or_default() {
            if !self.index.contains_key(m) {
                self.visit(m, edges);
                let low = self.low[n].min(self.low[m]);
                self.low.insert(n, low);
            } else if self.on_stack.contains(m) {
                let low = self.low[n].min(self.index[m]);
                self.low.insert(n, low);
            }
        }
        if self.low[n] == self.index[n] {
            let mut part = Vec::new();
            while let Some(m) = self.stack.pop() {
                self.on_stack.remove(m);
                part.push(m.to_path_buf());
                if m == n {
                    break;
                }
            }
            self.parts.push(part);
        }
    }
}

#[cfg(test)]
#[path = "imports_tests.rs"]
mod tests;
