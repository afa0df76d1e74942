//! The codec on byte buffers: round trips, golden vectors, and every kind of
//! bad input (truncated, oversized, random, bit-flipped, split frames).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod samples;

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};
use wire::message::MAX_INVENTORY;
use wire::{Bounded, Message, WireCodec, WireError, decode_body, encode_body, encode_frame};

fn encode(message: &Message) -> BytesMut {
    let mut buf = BytesMut::new();
    WireCodec::new().encode(message, &mut buf).unwrap();
    buf
}

/// Decodes every frame in `bytes`, fed in pieces split at `cuts`.
fn decode_split(bytes: &[u8], cuts: &[usize]) -> Result<Vec<Message>, WireError> {
    let mut codec = WireCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        buf.extend_from_slice(&bytes[start..cut]);
        start = cut;
        while let Some(m) = codec.decode(&mut buf)? {
            out.push(m);
        }
    }
    Ok(out)
}

#[test]
fn every_sample_round_trips() {
    for (name, message) in samples::all() {
        let frame = encode(&message);
        let back = decode_split(&frame, &[]).unwrap();
        assert_eq!(back, vec![message.clone()], "{name}");
        assert_eq!(
            decode_body(&encode_body(&message).unwrap()).unwrap(),
            message
        );
        assert_eq!(encode_frame(&message).unwrap(), frame.freeze(), "{name}");
    }
}

/// Golden vectors: `tests/data/<name>.hex` holds each sample's frame. Run
/// with `UPDATE_GOLDEN=1` to rewrite them after a deliberate change (and
/// update docs/PROTOCOL.md to match).
#[test]
fn golden_vectors_match() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, message) in samples::all() {
        let path = dir.join(format!("{name}.hex"));
        let frame = hex::encode(encode(&message));
        if update {
            std::fs::write(&path, format!("{frame}\n")).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(frame, golden.trim(), "encoding of {name} changed");
        let bytes = hex::decode(golden.trim()).unwrap();
        assert_eq!(decode_split(&bytes, &[]).unwrap(), vec![message], "{name}");
    }
}

#[test]
fn a_frame_split_at_every_byte_decodes_the_same() {
    let mut stream = BytesMut::new();
    let messages: Vec<Message> = samples::all().into_iter().map(|(_, m)| m).collect();
    for m in &messages {
        stream.extend_from_slice(&encode(m));
    }
    for cut in 0..=stream.len() {
        assert_eq!(
            decode_split(&stream, &[cut]).unwrap(),
            messages,
            "cut {cut}"
        );
    }
    // And byte by byte.
    let cuts: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(decode_split(&stream, &cuts).unwrap(), messages);
}

#[test]
fn a_truncated_frame_is_incomplete_not_an_error() {
    for (name, message) in samples::all() {
        let frame = encode(&message);
        for len in 0..frame.len() {
            let mut buf = BytesMut::from(&frame[..len]);
            assert!(
                matches!(WireCodec::new().decode(&mut buf), Ok(None)),
                "{name} cut at {len}"
            );
        }
    }
}

#[test]
fn an_oversized_length_is_refused_before_buffering() {
    let mut codec = WireCodec::with_max_frame(1024);
    let mut buf = BytesMut::new();
    buf.put_u32(1025);
    // Only the prefix has arrived: refused already, nothing reserved.
    assert!(matches!(
        codec.decode(&mut buf),
        Err(WireError::FrameTooLarge {
            len: 1025,
            max: 1024
        })
    ));
    assert!(buf.capacity() < 1024);
    let mut buf = BytesMut::new();
    buf.put_u32(u32::MAX);
    let err = WireCodec::new().decode(&mut buf).unwrap_err();
    assert!(err.must_disconnect());
    assert!(matches!(err, WireError::FrameTooLarge { .. }));
}

#[test]
fn an_oversized_message_is_refused_on_encode() {
    let big =
        Message::AnnounceTxs(Bounded::new(vec![chain_core::TxId::ZERO; MAX_INVENTORY]).unwrap());
    let mut buf = BytesMut::new();
    assert!(matches!(
        WireCodec::with_max_frame(100).encode(&big, &mut buf),
        Err(WireError::Encode { .. })
    ));
}

#[test]
fn an_unknown_tag_is_named() {
    let mut body = vec![Message::COUNT as u8];
    body.extend_from_slice(&[0; 8]);
    assert!(matches!(
        decode_body(&body),
        Err(WireError::UnknownMessage { tag }) if tag == Message::COUNT
    ));
    // A tag written with a long varint is still read as its value.
    assert!(matches!(
        decode_body(&[0xff, 0xff, 0x03]),
        Err(WireError::UnknownMessage { tag: 65535 })
    ));
    assert!(matches!(decode_body(&[]), Err(WireError::Malformed { .. })));
}

#[test]
fn trailing_bytes_are_malformed() {
    let mut body = encode_body(&Message::Ping { nonce: 7 }).unwrap();
    body.push(0);
    assert!(matches!(
        decode_body(&body),
        Err(WireError::Malformed { reason }) if reason.contains("trailing")
    ));
}

#[test]
fn an_over_long_varint_is_not_canonical() {
    // Ping { nonce: 1 } is [2, 1]; [2, 0x81, 0x00] decodes to the same
    // message with a padded varint.
    assert_eq!(
        encode_body(&Message::Ping { nonce: 1 }).unwrap(),
        vec![2, 1]
    );
    assert!(matches!(
        decode_body(&[2, 0x81, 0x00]),
        Err(WireError::NonCanonical { kind: "ping" })
    ));
    // The same for a transaction inside a message: re-encoded bytes with a
    // padded nonce are refused, not given a second id.
    let tx = Message::Tx(samples::signed_tx());
    let body = encode_body(&tx).unwrap();
    let padded = samples::pad_first_varint_after(&body, 1);
    if let Some(padded) = padded {
        assert!(matches!(
            decode_body(&padded),
            Err(WireError::NonCanonical { .. }) | Err(WireError::Malformed { .. })
        ));
    }
}

#[test]
fn lists_above_their_maximum_are_malformed() {
    // AnnounceTxs with MAX_INVENTORY + 1 ids, built by hand.
    let mut body = vec![4u8];
    let n = MAX_INVENTORY + 1;
    let mut len = n;
    while len >= 0x80 {
        body.push((len as u8) | 0x80);
        len >>= 7;
    }
    body.push(len as u8);
    body.extend(std::iter::repeat_n(0u8, 32 * n));
    // postcard reports a refusal by the type as a generic serde error.
    assert!(matches!(
        decode_body(&body),
        Err(WireError::Malformed { .. })
    ));
    // The same list one item shorter is fine.
    let mut ok = vec![4u8, 0xe8, 0x07];
    ok.extend(std::iter::repeat_n(0u8, 32 * MAX_INVENTORY));
    assert!(matches!(decode_body(&ok), Ok(Message::AnnounceTxs(l)) if l.len() == MAX_INVENTORY));
    // A huge announced length with no items behind it.
    assert!(matches!(
        decode_body(&[4, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(WireError::Malformed { .. })
    ));
}

#[test]
fn a_handshake_of_another_version_is_refused() {
    let Message::Handshake(mut h) = samples::handshake() else {
        unreachable!()
    };
    h.version = wire::PROTOCOL_VERSION + 1;
    let body = encode_body(&Message::Handshake(h)).unwrap();
    assert!(matches!(
        decode_body(&body),
        Err(WireError::UnsupportedVersion { got, .. }) if got == wire::PROTOCOL_VERSION + 1
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let mut codec = WireCodec::with_max_frame(4096);
        // Either an error or messages; never a panic, never a buffer above
        // the frame limit plus what was handed in.
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        prop_assert!(buf.capacity() <= 4096 + 4 + bytes.len());
        let _ = decode_body(&bytes);
    }

    #[test]
    fn bit_flipped_frames_decode_to_errors_or_messages(
        which in 0usize..64,
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let all = samples::all();
        let (_, message) = &all[which % all.len()];
        let mut frame = encode(message).to_vec();
        for (at, mask) in flips {
            let len = frame.len();
            frame[at % len] ^= mask;
        }
        let mut buf = BytesMut::from(&frame[..]);
        if let Ok(Some(decoded)) = WireCodec::new().decode(&mut buf) {
            // Whatever decodes is canonical: it re-encodes to the same body.
            let body = encode_body(&decoded).unwrap();
            prop_assert_eq!(decode_body(&body).unwrap(), decoded);
        }
    }

    #[test]
    fn generated_messages_round_trip(message in samples::arb_message()) {
        let frame = encode(&message);
        prop_assert_eq!(decode_split(&frame, &[frame.len() / 2]).unwrap(), vec![message]);
    }
}

/// Whether `buf`'s bytes lie in the allocation `[start, start + len)`.
fn inside(buf: &BytesMut, (start, len): (usize, usize)) -> bool {
    let at = buf.as_ptr() as usize;
    at >= start && at < start + len
}

/// `buf`'s allocation as far as it can be seen: its start and capacity.
fn allocation(buf: &BytesMut) -> (usize, usize) {
    (buf.as_ptr() as usize, buf.capacity())
}

#[test]
fn a_connections_buffers_give_back_a_large_frames_memory() {
    use bytes::Buf;
    let big = Message::Block(samples::block_of_transfers(6_000));
    let small = Message::Ping { nonce: 7 };
    let mut frames = encode(&big);
    assert!(frames.len() > 4 * wire::KEEP_BUFFER, "{}", frames.len());
    let small_frame = encode(&small);
    frames.extend_from_slice(&small_frame);
    // The large frame and part of the small one arrive together: what
    // follows the large frame moves to an allocation of its own.
    let mut codec = WireCodec::new();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&frames[..frames.len() - 5]);
    let read = allocation(&buf);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(big.clone()));
    assert!(!inside(&buf, read));
    assert!(buf.capacity() <= wire::KEEP_BUFFER, "{}", buf.capacity());
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(&frames[frames.len() - 5..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(small.clone()));
    // A small frame keeps the buffer it came in.
    let mut smalls = BytesMut::with_capacity(1024);
    smalls.extend_from_slice(&small_frame);
    smalls.extend_from_slice(&small_frame[..3]);
    let kept = allocation(&smalls);
    assert_eq!(codec.decode(&mut smalls).unwrap(), Some(small.clone()));
    assert!(inside(&smalls, kept));
    // Writing: once the large frame has left (the sink advances the
    // buffer past what it wrote), the next message starts a new buffer.
    let mut out = BytesMut::new();
    codec.encode(&big, &mut out).unwrap();
    let written = allocation(&out);
    out.advance(out.len());
    codec.encode(&small, &mut out).unwrap();
    assert!(!inside(&out, written));
    assert!(out.capacity() <= wire::KEEP_BUFFER, "{}", out.capacity());
    assert_eq!(&out[..], &small_frame[..]);
    // A buffer still holding frames to send is kept as it is.
    let mut queued = BytesMut::new();
    codec.encode(&big, &mut queued).unwrap();
    codec.encode(&small, &mut queued).unwrap();
    assert_eq!(&queued[..], &frames[..]);
}
