//! What the fuzz targets share: a dev network on which every hash meets
//! the proof of work (so a fuzzed block is judged by every other rule), a
//! small chain on it, a node on in-memory seams, and a store that hands a
//! start fuzzed records.
//!
//! Each target is in `fuzz_targets/`; `docs/ARCHITECTURE.md` ("Fuzzing")
//! lists them, and `.ci/fuzz` runs them all.

pub mod chain;
pub mod node;
pub mod stored;
