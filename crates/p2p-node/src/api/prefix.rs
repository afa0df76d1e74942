//! Ids named by a prefix of their hex digits, as git names commits: a
//! block, a transaction or a contract may be named by any prefix of at
//! least [`MIN_PREFIX_DIGITS`] hex digits that only it starts with.
//!
//! An id is a fixed number of bytes, ordered byte by byte, so the ids a
//! prefix names are exactly those between [`IdPrefix::low`] (the prefix
//! padded with `0`s) and [`IdPrefix::high`] (padded with `f`s): an ordered
//! index answers with a range scan. [`Matches`] gathers what several
//! sources (the store, the mempool...) found, without duplicates, up to a
//! bound, and says whether the prefix names nothing, one id or several.

use std::collections::BTreeSet;

/// The fewest hex digits a prefix may have: fewer would name too many ids
/// (8 digits leave one chance in about 4 billion that two given ids share
/// them).
pub const MIN_PREFIX_DIGITS: usize = 8;

/// The most matches an ambiguous prefix's answer lists.
pub const MAX_LISTED: usize = 10;

/// The most matches counted: past it the answer says "at least". Bounds
/// the work one request can cause, whatever ids an attacker made to share
/// a prefix.
pub const MAX_COUNTED: usize = 1_000;

/// Why a path segment is not an id prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Fewer than [`MIN_PREFIX_DIGITS`] hex digits.
    #[error(
        "`{given}` has {digits} hex digits: give at least {MIN_PREFIX_DIGITS} hex digits \
         (a unique prefix) or the whole id"
    )]
    TooShort {
        /// The segment as given.
        given: String,
        /// Its hex digits.
        digits: usize,
    },
    /// A character that is not a hex digit (nor an ignored dash).
    #[error(
        "`{given}` is not hex: `{bad}` is not a hex digit (give the whole id or at least \
         {MIN_PREFIX_DIGITS} hex digits of it)"
    )]
    NotHex {
        /// The segment as given.
        given: String,
        /// The first character that is not a hex digit.
        bad: char,
    },
    /// More hex digits than the id has.
    #[error(
        "`{given}` has {digits} hex digits; an id has {max} (give the whole id, or a prefix of at least 8 hex digits)"
    )]
    TooLong {
        /// The segment as given.
        given: String,
        /// Its hex digits.
        digits: usize,
        /// The id's length in hex digits.
        max: usize,
    },
}

/// A prefix of the hex digits of an `N`-byte id, lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPrefix<const N: usize> {
    /// The digits' values (0 to 15), at least [`MIN_PREFIX_DIGITS`] and at
    /// most `2 * N` of them.
    nibbles: Vec<u8>,
}

impl<const N: usize> IdPrefix<N> {
    /// Parses `s`: hex digits in either case; with `dashes`, `-` are
    /// ignored (a UUID's groups).
    ///
    /// # Errors
    ///
    /// [`PrefixError`]: a character that is not a hex digit, fewer than
    /// [`MIN_PREFIX_DIGITS`] digits, or more than the id has.
    pub fn parse(s: &str, dashes: bool) -> Result<IdPrefix<N>, PrefixError> {
        let mut nibbles = Vec::with_capacity(2 * N);
        for c in s.chars() {
            if dashes && c == '-' {
                continue;
            }
            let Some(v) = c.to_digit(16) else {
                return Err(PrefixError::NotHex {
                    given: s.to_string(),
                    bad: c,
                });
            };
            if nibbles.len() == 2 * N {
                let digits = s.chars().filter(char::is_ascii_hexdigit).count();
                return Err(PrefixError::TooLong {
                    given: s.to_string(),
                    digits,
                    max: 2 * N,
                });
            }
            // A hex digit is below 16.
            nibbles.push(v as u8);
        }
        if nibbles.len() < MIN_PREFIX_DIGITS {
            return Err(PrefixError::TooShort {
                given: s.to_string(),
                digits: nibbles.len(),
            });
        }
        Ok(IdPrefix { nibbles })
    }

    /// The whole id, when every digit was given (then no search is needed).
    pub fn full(&self) -> Option<[u8; N]> {
        (self.nibbles.len() == 2 * N).then(|| self.padded(0))
    }

    /// The lowest id with this prefix (the rest of the digits `0`).
    pub fn low(&self) -> [u8; N] {
        self.padded(0)
    }

    /// The highest id with this prefix (the rest of the digits `f`).
    pub fn high(&self) -> [u8; N] {
        self.padded(0xf)
    }

    /// Whether `id` starts with this prefix.
    pub fn matches(&self, id: &[u8; N]) -> bool {
        let low = self.low();
        let high = self.high();
        low.as_slice() <= id.as_slice() && id.as_slice() <= high.as_slice()
    }

    /// The prefix's digits, lowercase.
    pub fn digits(&self) -> String {
        self.nibbles
            .iter()
            .filter_map(|n| char::from_digit(u32::from(*n), 16))
            .collect()
    }

    fn padded(&self, fill: u8) -> [u8; N] {
        let mut bytes = [0u8; N];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let hi = self.nibbles.get(2 * i).copied().unwrap_or(fill);
            let lo = self.nibbles.get(2 * i + 1).copied().unwrap_or(fill);
            *byte = (hi << 4) | lo;
        }
        bytes
    }
}

/// What a prefix names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Nothing.
    None,
    /// Exactly one id.
    One(T),
    /// Several ids: the first [`MAX_LISTED`], lowest first, and how many
    /// there are (`at_least` when counting stopped at [`MAX_COUNTED`]).
    Many {
        /// The first matches, lowest first.
        listed: Vec<T>,
        /// How many matched (a lower bound if `at_least`).
        total: usize,
        /// Whether counting stopped at [`MAX_COUNTED`].
        at_least: bool,
    },
}

/// The distinct ids found for one prefix, from one or more sources, up to
/// [`MAX_COUNTED`].
#[derive(Clone, Debug)]
pub struct Matches<T: Ord> {
    found: BTreeSet<T>,
    capped: bool,
}

impl<T: Ord> Default for Matches<T> {
    fn default() -> Self {
        Matches {
            found: BTreeSet::new(),
            capped: false,
        }
    }
}

impl<T: Ord> Matches<T> {
    /// Adds what a source found (ids already found count once). Stops at
    /// [`MAX_COUNTED`].
    pub fn extend(&mut self, ids: impl IntoIterator<Item = T>) {
        for id in ids {
            if self.found.len() >= MAX_COUNTED {
                self.capped = true;
                return;
            }
            self.found.insert(id);
        }
    }

    /// Whether counting has stopped: a source need not be asked.
    pub fn is_full(&self) -> bool {
        self.capped || self.found.len() >= MAX_COUNTED
    }

    /// Nothing, one id, or several.
    pub fn lookup(self) -> Lookup<T> {
        let total = self.found.len();
        let mut ids = self.found.into_iter();
        match total {
            0 => Lookup::None,
            1 => ids.next().map_or(Lookup::None, Lookup::One),
            _ => Lookup::Many {
                listed: ids.take(MAX_LISTED).collect(),
                total,
                at_least: self.capped,
            },
        }
    }
}

/// The message of an ambiguous prefix: the matches listed, and how many
/// more there are.
pub fn ambiguous_message<T: std::fmt::Display>(
    prefix: &str,
    kind: &str,
    listed: &[T],
    total: usize,
    at_least: bool,
) -> String {
    let names: Vec<String> = listed.iter().map(ToString::to_string).collect();
    let more = total.saturating_sub(listed.len());
    let tail = match (more, at_least) {
        (0, _) => String::new(),
        (n, false) => format!(" and {n} more"),
        (n, true) => format!(" and at least {n} more"),
    };
    let count = if at_least {
        format!("at least {total}")
    } else {
        total.to_string()
    };
    format!(
        "`{prefix}` is ambiguous: it names {count} {kind}s: {}{tail}; give more digits",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A 4-byte id from its hex digits (crafted ids for the tests).
    fn id4(hex: &str) -> [u8; 4] {
        let mut b = [0u8; 4];
        hex::decode_to_slice(hex, &mut b).unwrap();
        b
    }

    fn id32(head: &str) -> [u8; 32] {
        let mut hex = head.to_string();
        while hex.len() < 64 {
            hex.push('0');
        }
        let mut b = [0u8; 32];
        hex::decode_to_slice(&hex, &mut b).unwrap();
        b
    }

    #[test]
    fn a_prefix_is_hex_of_at_least_the_minimum_length_and_at_most_the_id() {
        for short in ["", "a", "abcdef1", "ABCDEF1", "ab-cd-ef-1"] {
            assert!(
                matches!(
                    IdPrefix::<32>::parse(short, true),
                    Err(PrefixError::TooShort { .. })
                ),
                "{short}"
            );
        }
        for bad in [
            "abcdefgh",
            "abcdef12 ",
            "xyz",
            "5cadb75c-9b7f",
            "ab\u{e9}cdef12",
        ] {
            let e = IdPrefix::<32>::parse(bad, false).unwrap_err();
            assert!(matches!(e, PrefixError::NotHex { .. }), "{bad}: {e}");
        }
        let e = IdPrefix::<4>::parse("abcdef123", false).unwrap_err();
        assert!(matches!(e, PrefixError::TooLong { max: 8, .. }), "{e}");
        assert!(e.to_string().contains("at least 8 hex digits"), "{e}");
        // The message says what to give.
        let e = IdPrefix::<32>::parse("abcd", false).unwrap_err();
        assert!(e.to_string().contains("at least 8 hex digits"), "{e}");
        let e = IdPrefix::<32>::parse("abcdefgh", false).unwrap_err();
        assert!(e.to_string().contains("at least 8 hex digits"), "{e}");
        // Case and dashes.
        let p = IdPrefix::<32>::parse("5CADB75C-9b", true).unwrap();
        assert_eq!(p.digits(), "5cadb75c9b");
        assert!(IdPrefix::<32>::parse("5cadb75c-9b", false).is_err());
    }

    #[test]
    fn the_range_of_a_prefix_holds_exactly_the_ids_it_starts() {
        // Odd and even lengths.
        let p = IdPrefix::<4>::parse("1234567", false).unwrap_err();
        assert!(matches!(p, PrefixError::TooShort { .. }));
        let p = IdPrefix::<4>::parse("12345678", false).unwrap();
        assert_eq!(p.full(), Some(id4("12345678")));
        assert_eq!((p.low(), p.high()), (id4("12345678"), id4("12345678")));
        let p = IdPrefix::<32>::parse("123456789", false).unwrap();
        assert_eq!(p.full(), None);
        assert_eq!(p.low(), id32("123456789"));
        let mut high = id32("123456789");
        high[4] = 0x9f;
        for b in high.iter_mut().skip(5) {
            *b = 0xff;
        }
        assert_eq!(p.high(), high);
        assert!(p.matches(&id32("1234567890ab")));
        assert!(p.matches(&high));
        assert!(!p.matches(&id32("12345678a")));
        assert!(!p.matches(&id32("12345678")), "…80000 is below …9");
    }

    #[test]
    fn matches_from_several_sources_are_counted_once() {
        let p = IdPrefix::<32>::parse("abcdef01", false).unwrap();
        let ids = [
            id32("abcdef0100"),
            id32("abcdef01ff"),
            id32("abcdef02"),
            id32("00"),
        ];
        let mut m = Matches::default();
        m.extend(ids.iter().copied().filter(|i| p.matches(i)));
        m.extend([ids[0]]);
        assert_eq!(
            m.lookup(),
            Lookup::Many {
                listed: vec![ids[0], ids[1]],
                total: 2,
                at_least: false
            }
        );
        let mut m = Matches::default();
        m.extend([ids[2], ids[2]]);
        assert_eq!(m.lookup(), Lookup::One(ids[2]));
        assert_eq!(Matches::<u32>::default().lookup(), Lookup::None);
    }

    #[test]
    fn many_matches_list_ten_and_count_the_rest_up_to_a_bound() {
        let mut m = Matches::default();
        m.extend(0..25u32);
        let Lookup::Many {
            listed,
            total,
            at_least,
        } = m.lookup()
        else {
            panic!("ambiguous");
        };
        assert_eq!((listed.len(), total, at_least), (MAX_LISTED, 25, false));
        let msg = ambiguous_message("abcdef01", "transaction", &listed, total, at_least);
        assert!(msg.contains("names 25 transactions"), "{msg}");
        assert!(msg.contains("0, 1, 2"), "{msg}");
        assert!(msg.ends_with("9 and 15 more; give more digits"), "{msg}");

        let mut m = Matches::default();
        m.extend(0..(MAX_COUNTED as u32 * 3));
        assert!(m.is_full());
        let Lookup::Many {
            listed,
            total,
            at_least,
        } = m.lookup()
        else {
            panic!("ambiguous");
        };
        assert_eq!((total, at_least), (MAX_COUNTED, true));
        let msg = ambiguous_message("abcdef01", "block", &listed, total, at_least);
        assert!(msg.contains("at least 1000 blocks"), "{msg}");
        assert!(msg.contains("and at least 990 more"), "{msg}");

        let two = ambiguous_message("abcdef01", "contract", &["a", "b"], 2, false);
        assert_eq!(
            two,
            "`abcdef01` is ambiguous: it names 2 contracts: a, b; give more digits"
        );
    }
}
