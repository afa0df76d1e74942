//! A small Rust lexer for the tidy checks: identifiers, punctuation and
//! string literals with their line numbers; comments, character literals
//! and lifetimes dropped. Enough to find `mod` declarations, `#[path]`
//! attributes and `use` trees without being fooled by a `use crate::x`
//! inside a comment or a string.

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// An identifier or keyword (numbers come out as identifiers too).
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other punctuation character.
    Punct(char),
    /// A string literal's contents, unescaped only as far as `#[path]`
    /// needs (none of its escapes are interpreted).
    Str(String),
}

/// A token and the line (1-based) it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spanned {
    pub(crate) token: Token,
    pub(crate) line: usize,
}

/// The tokens of `text`.
pub(crate) fn tokens(text: &str) -> Vec<Spanned> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"..", r#".."#, br"..", cr"..": up to the quote and as many #.
            i += hashes.prefix;
            let from = i;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (1..=hashes.count).all(|k| at(i + k) == '#') {
                    break;
                }
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            let value: String = chars[from..i.min(chars.len())].iter().collect();
            out.push(Spanned {
                token: Token::Str(value),
                line: start_line,
            });
            i += 1 + hashes.count;
        } else if c == '"' || ((c == 'b' || c == 'c') && at(i + 1) == '"') {
            i += if c == '"' { 1 } else { 2 };
            let from = i;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            let value: String = chars[from..i.min(chars.len())].iter().collect();
            out.push(Spanned {
                token: Token::Str(value),
                line: start_line,
            });
            i += 1;
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            // A character literal ('a', '\n', '\u{1F600}', b'x') or a
            // lifetime ('a, 'static): neither matters here.
            let q = if c == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                i = q + 2;
                while i < chars.len() && chars[i] != '\'' && chars[i] != '\n' {
                    i += 1;
                }
                i += 1;
            } else if at(q + 2) == '\'' {
                i = q + 3;
            } else {
                i = q + 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            // A raw identifier (`r#use`) is that identifier.
            if c == 'r' && at(i + 1) == '#' && (at(i + 2).is_alphabetic() || at(i + 2) == '_') {
                i += 2;
            }
            let from = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[from..i].iter().collect();
            out.push(Spanned {
                token: Token::Ident(word),
                line: start_line,
            });
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Spanned {
                token: Token::PathSep,
                line: start_line,
            });
            i += 2;
        } else {
            out.push(Spanned {
                token: Token::Punct(c),
                line: start_line,
            });
            i += 1;
        }
    }
    out
}

/// Where a raw string's contents start: the prefix's length (`r"`,
/// `r##"`, `br#"`) and the number of `#`.
struct RawStart {
    prefix: usize,
    count: usize,
}

fn raw_string_start(chars: &[char], i: usize) -> Option<RawStart> {
    // Not the tail of an identifier such as `bar"`.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut count = 0;
    while chars.get(j) == Some(&'#') {
        count += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(RawStart {
        prefix: j + 1 - i,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(text: &str) -> Vec<String> {
        tokens(text)
            .into_iter()
            .filter_map(|t| match t.token {
                Token::Ident(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_strings_chars_and_lifetimes_hide_nothing_else() {
        let text = "// use crate::a;\n/* use crate::b; /* nested */ */ let s = \"use crate::c;\";\n\
                    let r = r#\"use \"crate\"::d;\"#; let c = '{'; let q = '\\''; fn f<'a>() {}\n\
                    let r#type = b'x';";
        assert_eq!(
            idents(text),
            [
                "let", "s", "let", "r", "let", "c", "let", "q", "fn", "f", "let", "type"
            ]
        );
    }

    #[test]
    fn lines_are_counted_across_comments_and_strings() {
        let text = "a\n/* x\ny */ b \"s\nt\" c\n";
        let lines: Vec<(String, usize)> = tokens(text)
            .into_iter()
            .filter_map(|t| match t.token {
                Token::Ident(w) => Some((w, t.line)),
                _ => None,
            })
            .collect();
        let expected = [("a", 1), ("b", 3), ("c", 4)].map(|(w, l)| (w.to_string(), l));
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_path_attribute_keeps_its_string() {
        let t = tokens("#[path = \"common/process.rs\"]\nmod process;");
        assert!(t.contains(&Spanned {
            token: Token::Str("common/process.rs".to_string()),
            line: 1
        }));
    }
}
