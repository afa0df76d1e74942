//! Encoding and decoding a block of 1,000 signed transfers through the
//! framed codec, canonical check included. `cargo xtask bench` reads the
//! result as `wire.block_roundtrip` in MB/s.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::{Decoder, Encoder};
use wire::{Message, WireCodec};

#[path = "../tests/samples/mod.rs"]
mod samples;

fn block_roundtrip(c: &mut Criterion) {
    let message = Message::Block(samples::block_of_transfers(1_000));
    let mut codec = WireCodec::new();
    let mut frame = BytesMut::new();
    codec.encode(&message, &mut frame).unwrap();
    let len = frame.len() as u64;
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(len));
    group.bench_function("block_roundtrip", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(frame.len());
            codec.encode(&message, &mut buf).unwrap();
            let decoded = codec.decode(&mut buf).unwrap().unwrap();
            std::hint::black_box(decoded);
        })
    });
    group.finish();
}

criterion_group!(benches, block_roundtrip);
criterion_main!(benches);
