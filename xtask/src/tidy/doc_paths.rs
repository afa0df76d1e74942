//! The repository paths a Markdown document names: words in inline code
//! (`crates/p2p-node/src/core/mod.rs`, `docs/API.md`, `bash fuzz/seed.sh`)
//! whose first component is an entry at the repository's top level, and
//! the targets of relative links (`[API](API.md)`, relative to the
//! document). Fenced code blocks are commands and output, not references:
//! they are skipped. A word with a placeholder or a pattern in it (`<id>`,
//! `*`, `{a,b}`, `...`) is not a path.

use std::collections::BTreeSet;

/// A path named in a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DocPath {
    /// The line (1-based) it is on.
    pub(crate) line: usize,
    /// The path as written, without an `#anchor`, a `:line` or an `::item`.
    pub(crate) path: String,
    /// A link's target (relative to the document), not inline code
    /// (relative to the repository's root).
    pub(crate) link: bool,
}

/// The paths `text` names; `top_level` holds the names of the
/// repository's top-level entries (`crates`, `docs`, `.ci`, ...).
pub(crate) fn doc_paths(text: &str, top_level: &BTreeSet<String>) -> Vec<DocPath> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim_start();
        if let Some(open) = &fence {
            if trimmed.starts_with(open.as_str()) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker: String = trimmed
                .chars()
                .take_while(|&c| c == '`' || c == '~')
                .collect();
            fence = Some(marker);
            continue;
        }
        for span in code_spans(raw) {
            for word in span.split_whitespace() {
                if let Some(path) = clean(word)
                    && path.contains('/')
                    && path
                        .split('/')
                        .next()
                        .is_some_and(|first| top_level.contains(first))
                {
                    out.push(DocPath {
                        line,
                        path,
                        link: false,
                    });
                }
            }
        }
        for target in link_targets(raw) {
            let external =
                target.contains("://") || target.starts_with("mailto:") || target.starts_with('#');
            if !external && let Some(path) = clean(&target) {
                out.push(DocPath {
                    line,
                    path,
                    link: true,
                });
            }
        }
    }
    out
}

/// The contents of a line's inline code spans (a run of backticks up to
/// the next run of the same length).
fn code_spans(line: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let body = &rest[start + ticks..];
        let fence = "`".repeat(ticks);
        let mut search = 0;
        let mut close = None;
        while let Some(at) = body[search..].find(&fence) {
            let at = search + at;
            let run = body[at..].chars().take_while(|&c| c == '`').count();
            if run == ticks {
                close = Some(at);
                break;
            }
            search = at + run;
        }
        let Some(close) = close else { break };
        spans.push(&body[..close]);
        rest = &body[close + ticks..];
    }
    spans
}

/// The targets of a line's inline links, `[text](target "title")`, outside
/// code spans, and of a reference definition, `[name]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut rest = line;
    // Code spans blanked, so that `a](b)` in code is no link.
    for span in code_spans(line) {
        if let Some(at) = rest.find(span) {
            prose.push_str(&rest[..at]);
            rest = &rest[at + span.len()..];
        }
    }
    prose.push_str(rest);
    let mut targets = Vec::new();
    let mut from = 0;
    while let Some(at) = prose[from..].find("](") {
        let start = from + at + 2;
        let Some(end) = prose[start..].find(')') else {
            break;
        };
        let inside = prose[start..start + end].trim();
        let target = inside.trim_start_matches('<');
        let target = target.split(['>', ' ']).next().unwrap_or("");
        if !target.is_empty() {
            targets.push(target.to_string());
        }
        from = start + end;
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some((label, target)) = trimmed.split_once("]:")
        && !label.contains(']')
        && let Some(target) = target.split_whitespace().next()
    {
        targets.push(target.trim_matches(['<', '>']).to_string());
    }
    targets
}

/// A word as a path: without surrounding punctuation, a leading `./`, an
/// `#anchor`, a `:line` or an `::item`; `None` for a word with a
/// placeholder, a pattern or an assignment in it.
fn clean(word: &str) -> Option<String> {
    let word = word
        .trim_start_matches(['(', '"', '\''])
        .trim_end_matches([',', ';', ':', ')', '"', '\'']);
    if word.contains("...") {
        return None;
    }
    let word = word.strip_suffix('.').unwrap_or(word);
    let word = word.strip_prefix("./").unwrap_or(word);
    let word = word.split('#').next().unwrap_or(word);
    let word = word.split("::").next().unwrap_or(word);
    // `file.rs:120` or `file.rs:120:5`.
    let mut word = word;
    while let Some((head, tail)) = word.rsplit_once(':') {
        if tail.is_empty() || !tail.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        word = head;
    }
    let bad = |c: char| "<>*{}[]$|?=\\`,;:@%".contains(c);
    if word.is_empty() || word.contains("...") || word.chars().any(bad) {
        return None;
    }
    Some(word.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top() -> BTreeSet<String> {
        ["crates", "docs", "xtask", "fuzz", ".ci", "README.md"]
            .map(String::from)
            .into()
    }

    fn paths(text: &str) -> Vec<(usize, String, bool)> {
        doc_paths(text, &top())
            .into_iter()
            .map(|p| (p.line, p.path, p.link))
            .collect()
    }

    #[test]
    fn inline_code_names_repository_paths_by_their_first_component() {
        let text = "See `crates/p2p-node/src/core/mod.rs` and `xtask/src/bench.rs`.\n\
                    Run `bash fuzz/seed.sh` or `.ci/run`; `docs/API.md#errors` too,\n\
                    `crates/wire/src/codec.rs:120:5` and `crates/escrow/src/lib.rs::Ledger`.\n\
                    Not `src/main.rs`, not `target/release/p2p-node`, not `cargo xtask`.";
        assert_eq!(
            paths(text),
            [
                (1, "crates/p2p-node/src/core/mod.rs".to_string(), false),
                (1, "xtask/src/bench.rs".to_string(), false),
                (2, "fuzz/seed.sh".to_string(), false),
                (2, ".ci/run".to_string(), false),
                (2, "docs/API.md".to_string(), false),
                (3, "crates/wire/src/codec.rs".to_string(), false),
                (3, "crates/escrow/src/lib.rs".to_string(), false),
            ]
        );
    }

    #[test]
    fn placeholders_patterns_and_fenced_blocks_are_not_paths() {
        let text = "`crates/*/src` `fuzz/artifacts/<target>/` `crates/{a,b}` `docs/...`\n\
                    `X=crates/old/p2p-node`\n\
                    ```text\ncrates/missing.rs `crates/missing.rs`\n```\n\
                    after `docs/CLI.md`";
        assert_eq!(paths(text), [(6, "docs/CLI.md".to_string(), false)]);
    }

    #[test]
    fn relative_links_are_paths_and_web_links_are_not() {
        let text = "[API](API.md), [code](../crates/wire/src/lib.rs#L10 \"title\"),\n\
                    [web](https://example.invalid/x.md), [here](#section), `[a](b.md)`\n\
                    [ref]: ./SIMULATION.md";
        assert_eq!(
            paths(text),
            [
                (1, "API.md".to_string(), true),
                (1, "../crates/wire/src/lib.rs".to_string(), true),
                (3, "SIMULATION.md".to_string(), true),
            ]
        );
    }

    #[test]
    fn spans_of_several_backticks_hold_single_ones() {
        assert_eq!(
            code_spans("a ``x ` crates/a`` b `c` d `unclosed"),
            ["x ` crates/a", "c"]
        );
    }
}
