//! The framed codec: a 4-byte big-endian length, then the postcard body.
//!
//! [`WireCodec`] implements tokio-util's [`Decoder`] and [`Encoder`], so a
//! node wraps a socket in `Framed<TcpStream, WireCodec>`. Decoding checks, in
//! order, each before any work the next needs:
//!
//! 1. The length prefix against the frame limit, as soon as its 4 bytes are
//!    there: an oversized frame is refused before a byte of it is buffered.
//! 2. A partial frame is `Ok(None)`: wait for more bytes.
//! 3. The tag against the known message tags ([`WireError::UnknownMessage`]).
//! 4. The body as postcard, with every list bounded
//!    ([`WireError::Malformed`]); trailing bytes are malformed too.
//! 5. The body against the canonical re-encoding of the decoded message
//!    ([`WireError::NonCanonical`]): postcard accepts over-long varints, and
//!    one message must have one encoding.
//! 6. A handshake's protocol version ([`WireError::UnsupportedVersion`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::error::WireError;
use crate::message::{MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION};

/// The default frame limit: 4 MiB, enough for a full block.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// A frame above this size makes the connection's buffer that held it be
/// given back once it is done (see [`WireCodec`]).
pub const KEEP_BUFFER: usize = 64 * 1024;

/// The framed postcard codec for [`Message`].
///
/// A connection's buffers grow to the largest frame that crossed it (a
/// block of a megabyte). The codec gives that memory back once the frame
/// is decoded (the read buffer) or sent (the write buffer, at the next
/// encode that finds it empty), so a node with a hundred connections holds
/// a hundred small buffers, not a hundred of the largest block's size.
/// (`BytesMut::capacity` does not show this: a buffer advanced past what
/// was sent keeps its whole allocation, and takes it up again.)
#[derive(Debug)]
pub struct WireCodec {
    inner: LengthDelimitedCodec,
    max_frame: usize,
    /// Whether the inner codec has consumed a length prefix and is waiting
    /// for the rest of that frame: then the buffer starts with body bytes,
    /// not with a prefix to check.
    in_frame: bool,
    /// A frame above [`KEEP_BUFFER`] was encoded: the write buffer is
    /// given back once it is empty.
    wrote_large: bool,
}

impl WireCodec {
    /// A codec with the default 4 MiB frame limit.
    pub fn new() -> Self {
        Self::with_max_frame(DEFAULT_MAX_FRAME)
    }

    /// A codec with a frame limit of `max_frame` body bytes.
    pub fn with_max_frame(max_frame: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(LENGTH_PREFIX)
            .big_endian()
            .max_frame_length(max_frame)
            .new_codec();
        Self {
            inner,
            max_frame,
            in_frame: false,
            wrote_large: false,
        }
    }

    /// The frame limit in body bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Default for WireCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for WireCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        if self.in_frame {
            // The prefix was checked when it arrived.
        } else if let Some(prefix) = src.get(..LENGTH_PREFIX) {
            let mut len_bytes = [0u8; LENGTH_PREFIX];
            len_bytes.copy_from_slice(prefix);
            let len = u32::from_be_bytes(len_bytes) as usize;
            if len > self.max_frame {
                return Err(WireError::FrameTooLarge {
                    len,
                    max: self.max_frame,
                });
            }
        }
        let had_prefix = self.in_frame || src.len() >= LENGTH_PREFIX;
        match self.inner.decode(src)? {
            Some(frame) => {
                self.in_frame = false;
                let message = decode_body(&frame);
                if frame.len() > KEEP_BUFFER {
                    drop(frame);
                    // What follows the frame, in an allocation of its own.
                    *src = BytesMut::from(&src[..]);
                }
                message.map(Some)
            }
            None => {
                // With a whole prefix there, the inner codec has read it and
                // now waits for the body.
                self.in_frame = had_prefix;
                Ok(None)
            }
        }
    }
}

impl Encoder<Message> for WireCodec {
    type Error = WireError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        self.encode(&item, dst)
    }
}

impl Encoder<&Message> for WireCodec {
    type Error = WireError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        let body = encode_body(item)?;
        if body.len() > self.max_frame {
            return Err(WireError::Encode {
                reason: format!(
                    "{} message of {} bytes exceeds the frame limit of {}",
                    item.kind(),
                    body.len(),
                    self.max_frame
                ),
            });
        }
        let len = u32::try_from(body.len()).map_err(|_| WireError::Encode {
            reason: "frame length does not fit the 4-byte prefix".to_string(),
        })?;
        if self.wrote_large && dst.is_empty() {
            *dst = BytesMut::new();
            self.wrote_large = false;
        }
        self.wrote_large |= body.len() > KEEP_BUFFER;
        dst.reserve(LENGTH_PREFIX + body.len());
        dst.put_u32(len);
        dst.put_slice(&body);
        Ok(())
    }
}

/// The postcard body of a message (no length prefix).
///
/// # Errors
///
/// [`WireError::Encode`] if postcard refuses the value.
pub fn encode_body(message: &Message) -> Result<Vec<u8>, WireError> {
    postcard::to_stdvec(message).map_err(|e| WireError::Encode {
        reason: e.to_string(),
    })
}

/// The length of `value`'s postcard encoding in bytes, computed without
/// encoding it (0 if postcard refuses it).
pub fn encoded_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default()).unwrap_or(0)
}

/// The length of `message`'s whole frame (prefix and body) in bytes,
/// computed without encoding it (`usize::MAX` if postcard refuses it).
pub fn frame_len(message: &Message) -> usize {
    postcard::serialize_with_flavor(message, postcard::ser_flavors::Size::default())
        .map_or(usize::MAX, |len: usize| len.saturating_add(LENGTH_PREFIX))
}

/// A whole frame: length prefix and body.
///
/// # Errors
///
/// As [`encode_body`], or if the body exceeds `u32::MAX` bytes.
pub fn encode_frame(message: &Message) -> Result<Bytes, WireError> {
    let mut buf = BytesMut::new();
    WireCodec::with_max_frame(u32::MAX as usize).encode(message, &mut buf)?;
    Ok(buf.freeze())
}

/// Decodes one body (the bytes after the length prefix), with every check
/// listed in the module docs.
///
/// # Errors
///
/// [`WireError::UnknownMessage`], [`WireError::Malformed`],
/// [`WireError::NonCanonical`] or [`WireError::UnsupportedVersion`].
pub fn decode_body(body: &[u8]) -> Result<Message, WireError> {
    let tag = read_tag(body)?;
    if tag >= Message::COUNT {
        return Err(WireError::UnknownMessage { tag });
    }
    let (message, rest) =
        postcard::take_from_bytes::<Message>(body).map_err(|e| WireError::Malformed {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(WireError::Malformed {
            reason: format!("{} trailing bytes after a {}", rest.len(), message.kind()),
        });
    }
    if encode_body(&message)? != body {
        return Err(WireError::NonCanonical {
            kind: message.kind(),
        });
    }
    if let Message::Handshake(h) = &message
        && !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&h.version)
    {
        return Err(WireError::UnsupportedVersion {
            got: h.version,
            supported: PROTOCOL_VERSION,
        });
    }
    Ok(message)
}

/// Reads the varint tag at the start of a body.
fn read_tag(mut body: &[u8]) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        if !body.has_remaining() {
            return Err(WireError::Malformed {
                reason: "empty or truncated message tag".to_string(),
            });
        }
        let byte = body.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::Malformed {
        reason: "message tag varint is too long".to_string(),
    })
}
