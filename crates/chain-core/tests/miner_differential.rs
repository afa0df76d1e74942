//! Every miner path finds exactly the nonces that the reference SHA-256 of
//! the whole header gives: the portable kernel, each interleaved lane count
//! this CPU runs, the threaded scan, and `Miner::mine`, including at the end
//! of the nonce space and over ranges that do not fill the last group.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::sync::atomic::AtomicBool;

use chain_core::Header;
use chain_core::miner::{Job, Kernel, MineOutcome, Miner, scan_naive};
use common::sample_header;
use proptest::prelude::*;

/// Every matching nonce in the range, by the reference digest.
fn reference(h: &Header, start: u64, count: u64) -> Vec<u64> {
    let target = h.target.to_target().unwrap();
    (0..count)
        .map(|i| start + i)
        .filter(|&n| target.is_met_by(&Header { nonce: n, ..*h }.hash()))
        .collect()
}

/// Every matching nonce, by repeatedly scanning from the last hit + 1.
fn all_hits(scan: impl Fn(u64, u64) -> Option<u64>, start: u64, count: u64) -> Vec<u64> {
    let end = start + (count - 1);
    let mut hits = Vec::new();
    let mut from = start;
    while let Some(n) = scan(from, end - from + 1) {
        assert!((from..=end).contains(&n), "hit {n} outside {from}..={end}");
        hits.push(n);
        if n == end {
            break;
        }
        from = n + 1;
    }
    hits
}

fn check_all_paths(h: &Header, start: u64, count: u64) {
    let expected = reference(h, start, count);
    let job = Job::new(h).unwrap();
    for kernel in Kernel::available() {
        let got = all_hits(|s, c| kernel.scan(&job, s, c), start, count);
        assert_eq!(got, expected, "kernel {}", kernel.name());
    }
    for threads in 1..=3 {
        let miner = Miner::new(threads);
        let got = all_hits(|s, c| miner.scan(&job, s, c), start, count);
        assert_eq!(got, expected, "{threads} threads");
    }
    let target = h.target.to_target().unwrap();
    let naive = all_hits(|s, c| scan_naive(h, target, s, c), start, count);
    assert_eq!(naive, expected, "naive");
}

#[test]
fn the_interleaved_kernels_are_available_here() {
    // This machine has SHA-NI; where it does not, only the portable kernel
    // exists and the other tests still compare it against the reference.
    let kernels = Kernel::available();
    assert_eq!(kernels[0], Kernel::Portable);
    if std::arch::is_x86_feature_detected!("sha") {
        assert_eq!(kernels.len(), 6);
    }
    assert!(kernels.contains(&Kernel::detect()));
}

#[test]
fn all_paths_agree_on_an_easy_target() {
    // 4 zero bits: about one nonce in sixteen matches.
    check_all_paths(&sample_header(1, 4), 0, 4_099);
    check_all_paths(&sample_header(2, 6), 1_000_000, 2_051);
}

#[test]
fn all_paths_agree_at_the_end_of_the_nonce_space() {
    for count in [1u64, 2, 7, 13, 1_001] {
        check_all_paths(&sample_header(3, 3), u64::MAX - (count - 1), count);
    }
    // Ranges that would pass the end are clamped, never wrapped.
    let h = sample_header(4, 1);
    let job = Job::new(&h).unwrap();
    for kernel in Kernel::available() {
        if let Some(n) = kernel.scan(&job, u64::MAX - 2, 100) {
            assert!(n >= u64::MAX - 2);
        }
    }
}

#[test]
fn mine_returns_the_reference_hash() {
    for seed in 0..8 {
        let h = sample_header(seed, 12);
        let stop = AtomicBool::new(false);
        let MineOutcome::Found(found) = Miner::new(2).mine(&h, &stop).unwrap() else {
            panic!("no block");
        };
        assert!(h.target.to_target().unwrap().is_met_by(&found.hash()));
        // On one thread the first hit is the lowest, as the reference says.
        let MineOutcome::Found(one) = Miner::new(1).mine(&h, &stop).unwrap() else {
            panic!("no block");
        };
        let first = reference(&h, 0, one.nonce + 1);
        assert_eq!(first.first(), Some(&one.nonce));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_headers_agree(seed in any::<u8>(), bits in 1u32..8, start in any::<u64>(), count in 1u64..600) {
        let start = start.min(u64::MAX - (count - 1));
        check_all_paths(&sample_header(seed, bits), start, count);
    }
}
