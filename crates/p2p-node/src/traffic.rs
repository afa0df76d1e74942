//! What the node's peer connections carried, by message kind: messages
//! and bytes (whole frames, length prefix included), in and out, counted
//! by [`CountingCodec`] as the frames are decoded and encoded, for
//! `GET /metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};
use wire::{Message, WireCodec, WireError};

/// One kind's messages and bytes, each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Messages received.
    pub messages_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
}

/// Every connection's traffic, by message kind ([`Message::kind`]), since
/// the node started. Shared by the connection tasks; each frame takes the
/// lock once.
#[derive(Debug, Default)]
pub struct Traffic {
    by_kind: Mutex<BTreeMap<&'static str, Flow>>,
}

impl Traffic {
    /// A copy of the figures.
    pub fn by_kind(&self) -> BTreeMap<&'static str, Flow> {
        self.by_kind
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn add(&self, kind: &'static str, bytes: usize, incoming: bool) {
        let mut map = self.by_kind.lock().unwrap_or_else(PoisonError::into_inner);
        let flow = map.entry(kind).or_default();
        let bytes = bytes as u64;
        if incoming {
            flow.messages_in += 1;
            flow.bytes_in += bytes;
        } else {
            flow.messages_out += 1;
            flow.bytes_out += bytes;
        }
    }
}

/// The wire codec, counting what it decodes and encodes into a
/// [`Traffic`].
pub struct CountingCodec {
    inner: WireCodec,
    traffic: Arc<Traffic>,
    /// Bytes consumed towards the frame being read.
    reading: usize,
}

impl CountingCodec {
    /// Frames up to `max_frame` bytes, counted into `traffic`.
    pub fn new(max_frame: usize, traffic: Arc<Traffic>) -> CountingCodec {
        CountingCodec {
            inner: WireCodec::with_max_frame(max_frame),
            traffic,
            reading: 0,
        }
    }
}

impl Decoder for CountingCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let before = src.len();
        let decoded = self.inner.decode(src)?;
        // A frame is consumed in parts (its prefix, then its body): the
        // parts add up until the message is whole.
        self.reading += before.saturating_sub(src.len());
        if let Some(message) = &decoded {
            self.traffic
                .add(message.kind(), std::mem::take(&mut self.reading), true);
        }
        Ok(decoded)
    }
}

impl Encoder<Message> for CountingCodec {
    type Error = WireError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        let before = dst.len();
        let kind = item.kind();
        self.inner.encode(&item, dst)?;
        self.traffic
            .add(kind, dst.len().saturating_sub(before), false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn frames_are_counted_whole_by_kind_however_they_arrive() {
        let traffic = Arc::new(Traffic::default());
        let mut out = CountingCodec::new(1 << 20, traffic.clone());
        let mut wire = BytesMut::new();
        out.encode(Message::Ping { nonce: 7 }, &mut wire).unwrap();
        out.encode(Message::GetAddrs, &mut wire).unwrap();
        let sent = wire.len() as u64;
        // Read back one byte at a time.
        let theirs = Arc::new(Traffic::default());
        let mut into = CountingCodec::new(1 << 20, theirs.clone());
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            src.extend_from_slice(&[*b]);
            while let Some(m) = into.decode(&mut src).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![Message::Ping { nonce: 7 }, Message::GetAddrs]);
        let sent_by_kind = traffic.by_kind();
        let read_by_kind = theirs.by_kind();
        assert_eq!(sent_by_kind["ping"].messages_out, 1);
        assert_eq!(
            sent_by_kind["ping"].bytes_out, 6,
            "4 prefix bytes, tag, nonce"
        );
        assert_eq!(read_by_kind["ping"].bytes_in, 6);
        assert_eq!(read_by_kind["get-addrs"].messages_in, 1);
        let total: u64 = read_by_kind.values().map(|f| f.bytes_in).sum();
        assert_eq!(total, sent);
    }
}
