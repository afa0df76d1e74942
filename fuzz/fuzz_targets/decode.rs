//! Feeds arbitrary bytes to the wire decoder, whole and as a stream split
//! in two, and checks that whatever decodes is canonical.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use wire::{WireCodec, decode_body, encode_body};

fuzz_target!(|data: &[u8]| {
    // The body decoder alone.
    if let Ok(message) = decode_body(data) {
        let again = encode_body(&message).expect("a decoded message re-encodes");
        assert_eq!(again, data, "decoded bytes must be canonical");
    }
    // The framed codec on a stream, fed in two pieces.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut codec = WireCodec::with_max_frame(64 * 1024);
    let mut buf = BytesMut::from(&data[..split]);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => return,
        }
    }
    buf.extend_from_slice(&data[split..]);
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
});
