//! The import-circle check on small crates held in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Circle, circles};

/// The circles of an in-memory crate rooted at `src/lib.rs`.
fn check(files: &[(&str, &str)]) -> Vec<Circle> {
    let files: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
    circles(Path::new("src/lib.rs"), &|p: &Path| files.get(p).cloned())
}

/// Each circle's files, as sorted strings.
fn files(circles: &[Circle]) -> Vec<Vec<String>> {
    circles
        .iter()
        .map(|c| {
            let mut f: Vec<String> = c.files.iter().map(|f| f.display().to_string()).collect();
            f.sort();
            f
        })
        .collect()
}

#[test]
fn two_files_importing_each_other_are_one_circle_with_both_imports() {
    let found = check(&[
        ("src/lib.rs", "//! x\nmod a;\nmod b;\n"),
        ("src/a.rs", "//! a\nuse crate::b::B;\npub struct A;\n"),
        ("src/b.rs", "//! b\n\nuse crate::a::A;\npub struct B;\n"),
    ]);
    assert_eq!(files(&found), [["src/a.rs", "src/b.rs"]]);
    let text = found[0].to_string();
    assert!(text.contains("src/a.rs:2 imports src/b.rs"), "{text}");
    assert!(text.contains("src/b.rs:3 imports src/a.rs"), "{text}");
}

#[test]
fn a_longer_loop_is_reported_once() {
    let found = check(&[
        ("src/lib.rs", "mod a; mod b; mod c; mod d;"),
        ("src/a.rs", "use crate::b::B;"),
        ("src/b.rs", "use crate::c::C;"),
        ("src/c.rs", "use crate::a::A; use crate::d::D;"),
        ("src/d.rs", "pub struct D;"),
    ]);
    assert_eq!(files(&found), [["src/a.rs", "src/b.rs", "src/c.rs"]]);
    assert_eq!(found[0].imports.len(), 3);
}

#[test]
fn no_loop_no_circle() {
    let found = check(&[
        ("src/lib.rs", "mod a; mod b; mod c; use a::A;"),
        ("src/a.rs", "use crate::b::B;"),
        ("src/b.rs", "use crate::c::C;"),
        ("src/c.rs", "pub struct C;"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_parent_importing_its_child_that_imports_super_is_a_circle() {
    let found = check(&[
        ("src/lib.rs", "mod net;"),
        (
            "src/net/mod.rs",
            "mod peer;\npub(crate) use peer::Peer;\npub struct Options;",
        ),
        ("src/net/peer.rs", "use super::Options;\npub struct Peer;"),
    ]);
    assert_eq!(files(&found), [["src/net/mod.rs", "src/net/peer.rs"]]);
    // `self::` spells the same import.
    let found = check(&[
        ("src/lib.rs", "mod net;"),
        (
            "src/net.rs",
            "mod peer;\nuse self::peer::Peer;\npub struct Options;",
        ),
        ("src/net/peer.rs", "use super::Options;"),
    ]);
    assert_eq!(files(&found), [["src/net.rs", "src/net/peer.rs"]]);
}

#[test]
fn groups_pub_uses_and_nested_paths_each_count() {
    let found = check(&[
        ("src/lib.rs", "mod a; mod b; mod c;"),
        (
            "src/a.rs",
            "pub use crate::{b::{self, B}, c::C as Sea};\npub(crate) use crate::c::*;",
        ),
        ("src/b.rs", "pub(crate) use crate::a::*;"),
        ("src/c.rs", "pub use super::a::{A};"),
    ]);
    assert_eq!(files(&found), [["src/a.rs", "src/b.rs", "src/c.rs"]]);
    assert_eq!(found[0].imports.len(), 5, "{}", found[0]);
}

#[test]
fn a_deeper_path_names_the_deepest_module_file() {
    let found = check(&[
        ("src/lib.rs", "mod store; mod x;"),
        ("src/store/mod.rs", "mod redb; use crate::x::X;"),
        ("src/store/redb.rs", "use crate::x::X;"),
        ("src/x.rs", "use crate::store::redb::Store;"),
    ]);
    // x.rs imports store/redb.rs, not store/mod.rs: no loop through mod.rs.
    assert_eq!(files(&found), [["src/store/redb.rs", "src/x.rs"]]);
}

#[test]
fn inline_test_modules_comments_strings_and_externs_add_nothing() {
    let found = check(&[
        ("src/lib.rs", "mod a; mod b;"),
        (
            "src/a.rs",
            "// use crate::b::B;\nconst S: &str = \"use crate::b::B;\";\n\
             use std::fmt; use ::serde::Serialize;\n\
             fn f() -> impl Sized + use<> {}\n\
             #[cfg(test)]\nmod tests { use super::*; use crate::a::A; }",
        ),
        (
            "src/b.rs",
            "use crate::a::A;\nmod inner { use super::super::b::B; }",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn path_attributes_and_inline_modules_are_followed() {
    let found = check(&[
        ("src/lib.rs", "mod pool;"),
        (
            "src/pool.rs",
            "use crate::pool::checks::Check;\nmod checks {\n    #[path = \"checks_impl.rs\"]\n    mod imp;\n}\n\
             #[cfg(test)]\n#[path = \"pool_tests.rs\"]\nmod tests;",
        ),
        ("src/pool/checks/checks_impl.rs", "use crate::pool::Pool;"),
        ("src/pool_tests.rs", "use super::*;"),
    ]);
    // pool.rs imports only its inline `checks` (itself); the test file is
    // found beside pool.rs, imports it, and is not imported back.
    assert!(found.is_empty(), "{found:?}");
    let found = check(&[
        ("src/lib.rs", "mod pool;"),
        (
            "src/pool.rs",
            "use crate::pool::checks::imp::Imp;\nmod checks {\n    #[path = \"checks_impl.rs\"]\n    mod imp;\n}",
        ),
        ("src/pool/checks/checks_impl.rs", "use crate::pool::Pool;"),
    ]);
    assert_eq!(
        files(&found),
        [["src/pool.rs", "src/pool/checks/checks_impl.rs"]]
    );
}

#[test]
fn a_path_in_the_code_is_an_import_too() {
    let found = check(&[
        ("src/lib.rs", "mod listener; mod peer;"),
        (
            "src/listener.rs",
            "use crate::peer::PeerTask;\npub struct PendingSlot;",
        ),
        (
            "src/peer.rs",
            "pub struct PeerTask {\n    pending: Option<crate::listener::PendingSlot>,\n}",
        ),
    ]);
    assert_eq!(files(&found), [["src/listener.rs", "src/peer.rs"]]);
    assert!(
        found[0]
            .to_string()
            .contains("src/peer.rs:2 imports src/listener.rs")
    );
    // The child's `super::Plan` in a signature, its parent's `use`.
    let found = check(&[
        ("src/lib.rs", "mod bench;"),
        ("src/bench.rs", "mod run;\nuse run::run;\nstruct Plan;"),
        ("src/bench/run.rs", "pub fn run(p: &super::Plan) {}"),
    ]);
    assert_eq!(files(&found), [["src/bench.rs", "src/bench/run.rs"]]);
    // Not `$crate::` in a macro, which names the crate it expands in.
    let found = check(&[
        (
            "src/lib.rs",
            "mod hash; pub use hash::Hash; pub mod private {}",
        ),
        (
            "src/hash.rs",
            "macro_rules! m { () => { $crate::private::f() } }\npub struct Hash;",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_name_the_root_re_exports_names_the_file_that_defines_it() {
    let files_of = |lib: &str| {
        files(&check(&[
            ("src/lib.rs", lib),
            ("src/hash.rs", "pub struct BlockHash;"),
            (
                "src/tx.rs",
                "use crate::BlockHash;\nfn id() -> crate::Hash { todo!() }",
            ),
        ]))
    };
    // `crate::BlockHash` is hash.rs's, `crate::Hash` hash.rs's too.
    assert!(files_of("mod hash; mod tx; pub use hash::{BlockHash, BlockHash as Hash};").is_empty());
    // A root that defines what a child uses, and imports from that child.
    assert_eq!(
        files_of("mod hash; mod tx; pub use tx::Tx; pub struct Hash; pub use hash::BlockHash;"),
        [["src/lib.rs", "src/tx.rs"]]
    );
}
