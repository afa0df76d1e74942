//! wire: the P2P protocol of the escrow chain, as bytes.
//!
//! No sockets here: the node wraps its streams in
//! `tokio_util::codec::Framed<_, WireCodec>`, and this crate is tested on
//! byte buffers alone.
//!
//! # Layout
//!
//! - [`message`]: the message set ([`Message`]) and the limits on every list.
//! - [`codec`]: [`WireCodec`], length-delimited framing with postcard bodies,
//!   canonical decoding.
//! - [`compact`]: compact blocks (short ids, rebuilding a block).
//! - [`bounded`]: lists and strings whose maximum is enforced while decoding.
//! - [`error`](crate::error): [`WireError`].
//!
//! `docs/PROTOCOL.md` specifies every message as bytes.

pub mod bounded;
pub mod codec;
pub mod compact;
pub mod error;
pub mod message;

pub use bounded::{Bounded, BoundedString, TooLong};
pub use codec::{
    DEFAULT_MAX_FRAME, KEEP_BUFFER, WireCodec, decode_body, encode_body, encode_frame, encoded_len,
    frame_len,
};
pub use compact::{CompactBlock, CompactError, Prefilled, Rebuild, ShortId, Started};
pub use error::{WireError, WireErrorKind};
pub use message::{
    COMPACT_VERSION, Handshake, MIN_PROTOCOL_VERSION, Message, NodeId, PROTOCOL_VERSION, Reason,
};
