//! Lists and strings with a maximum length that is enforced while decoding,
//! before anything is allocated for them.
//!
//! postcard writes a list as a varint length and then the elements. A peer
//! controls that length; [`Bounded`] refuses one above `MAX` as soon as it is
//! read, so a message can never make the decoder reserve room for more
//! elements than its documented maximum.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A list longer than its maximum was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a list of {len} items exceeds its maximum of {max}")]
pub struct TooLong {
    /// The list's length.
    pub len: usize,
    /// The maximum.
    pub max: usize,
}

/// A `Vec<T>` of at most `MAX` items.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bounded<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Bounded<T, MAX> {
    /// The maximum length.
    pub const MAX: usize = MAX;

    /// Wraps `items`.
    ///
    /// # Errors
    ///
    /// [`TooLong`] if there are more than `MAX`.
    pub fn new(items: Vec<T>) -> Result<Self, TooLong> {
        if items.len() > MAX {
            return Err(TooLong {
                len: items.len(),
                max: MAX,
            });
        }
        Ok(Self(items))
    }

    /// Keeps the first `MAX` items and drops the rest.
    pub fn truncating(mut items: Vec<T>) -> Self {
        items.truncate(MAX);
        Self(items)
    }

    /// The items.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Deref for Bounded<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for Bounded<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize, const MAX: usize> Serialize for Bounded<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
            type Value = Bounded<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {MAX} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let announced = seq.size_hint().unwrap_or(0);
                if announced > MAX {
                    return Err(de::Error::custom(TooLong {
                        len: announced,
                        max: MAX,
                    }));
                }
                let mut items = Vec::with_capacity(announced);
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(de::Error::custom(TooLong {
                            len: MAX + 1,
                            max: MAX,
                        }));
                    }
                    items.push(item);
                }
                Ok(Bounded(items))
            }
        }
        deserializer.deserialize_seq(BoundedVisitor::<T, MAX>(PhantomData))
    }
}

/// A UTF-8 string of at most `MAX` bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct BoundedString<const MAX: usize>(String);

impl<const MAX: usize> BoundedString<MAX> {
    /// Wraps `s`.
    ///
    /// # Errors
    ///
    /// [`TooLong`] if it has more than `MAX` bytes.
    pub fn new(s: impl Into<String>) -> Result<Self, TooLong> {
        let s = s.into();
        if s.len() > MAX {
            return Err(TooLong {
                len: s.len(),
                max: MAX,
            });
        }
        Ok(Self(s))
    }

    /// Keeps at most `MAX` bytes, cutting at a character boundary.
    pub fn truncating(s: &str) -> Self {
        let mut end = s.len().min(MAX);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Self(s[..end].to_string())
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MAX: usize> fmt::Display for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> Serialize for BoundedString<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // postcard hands out a borrowed &str after checking the bytes are
        // there, so the length is checked before anything is copied.
        let s = <&'de str>::deserialize(deserializer)?;
        BoundedString::new(s).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_long_lists_are_refused_on_build_and_decode() {
        assert!(Bounded::<u8, 2>::new(vec![1, 2, 3]).is_err());
        assert_eq!(Bounded::<u8, 2>::truncating(vec![1, 2, 3]).len(), 2);
        let bytes = postcard::to_stdvec(&vec![1u8, 2, 3]).unwrap();
        assert!(postcard::from_bytes::<Bounded<u8, 2>>(&bytes).is_err());
        assert_eq!(
            &*postcard::from_bytes::<Bounded<u8, 3>>(&bytes).unwrap(),
            &[1, 2, 3]
        );
    }

    #[test]
    fn a_huge_announced_length_is_refused_before_allocating() {
        // A varint length of u32::MAX followed by nothing.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = postcard::from_bytes::<Bounded<u64, 10>>(&bytes);
        assert!(err.is_err());
    }

    #[test]
    fn strings_are_bounded_in_bytes() {
        assert!(BoundedString::<3>::new("abcd").is_err());
        assert_eq!(BoundedString::<3>::truncating("aé€").as_str(), "aé");
        let bytes = postcard::to_stdvec("hello").unwrap();
        assert!(postcard::from_bytes::<BoundedString<4>>(&bytes).is_err());
        assert_eq!(
            postcard::from_bytes::<BoundedString<5>>(&bytes)
                .unwrap()
                .as_str(),
            "hello"
        );
    }
}
