//! [`WireError`]: why bytes from a peer are not a message.

/// Why a frame could not be decoded (or a message encoded).
///
/// The codec reads a stream: once a frame is refused, the reader no longer
/// knows where the next frame starts (a length prefix may itself be the
/// garbage), so **every decoding error means the connection must be
/// dropped**. [`WireError::must_disconnect`] says so to callers that want to
/// ask. What the node adds on top (a penalty, a ban) depends on
/// [`WireError::kind`].
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The length prefix announces a frame above the limit; nothing was
    /// allocated for it.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes; drop the connection")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The codec's limit.
        max: usize,
    },
    /// The frame's body is not a postcard encoding of a message: truncated,
    /// trailing bytes, an invalid value, or a list above its maximum.
    #[error("malformed message body: {reason}; drop the connection")]
    Malformed {
        /// What postcard, or a bound check, said.
        reason: String,
    },
    /// The body decodes, but its bytes are not the canonical encoding of what
    /// they decode to (an over-long integer, say): one message, one encoding.
    #[error("non-canonical message encoding ({kind}); drop the connection")]
    NonCanonical {
        /// The message kind that was decoded.
        kind: &'static str,
    },
    /// The message tag is not one this protocol version knows.
    #[error("unknown message tag {tag}; drop the connection")]
    UnknownMessage {
        /// The tag read from the body.
        tag: u64,
    },
    /// A handshake announces a protocol version this node does not speak.
    #[error(
        "unsupported protocol version {got} (this node speaks {supported}); drop the connection"
    )]
    UnsupportedVersion {
        /// The peer's version.
        got: u32,
        /// Ours.
        supported: u32,
    },
    /// An encoding failed (a message this node built is too large, say).
    #[error("cannot encode message: {reason}")]
    Encode {
        /// What went wrong.
        reason: String,
    },
    /// The underlying stream failed.
    #[error("connection i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The coarse class of a [`WireError`], for penalties and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireErrorKind {
    /// [`WireError::FrameTooLarge`].
    FrameTooLarge,
    /// [`WireError::Malformed`] or [`WireError::NonCanonical`].
    Malformed,
    /// [`WireError::UnknownMessage`].
    UnknownMessage,
    /// [`WireError::UnsupportedVersion`].
    UnsupportedVersion,
    /// [`WireError::Encode`].
    Encode,
    /// [`WireError::Io`]: not the peer's fault as far as anyone can tell.
    Io,
}

impl WireError {
    /// Whether the connection must be dropped: true for every decoding
    /// error, since the stream cannot be resynchronised after one.
    pub fn must_disconnect(&self) -> bool {
        !matches!(self, WireError::Encode { .. })
    }

    /// The class of the error.
    pub fn kind(&self) -> WireErrorKind {
        match self {
            WireError::FrameTooLarge { .. } => WireErrorKind::FrameTooLarge,
            WireError::Malformed { .. } | WireError::NonCanonical { .. } => {
                WireErrorKind::Malformed
            }
            WireError::UnknownMessage { .. } => WireErrorKind::UnknownMessage,
            WireError::UnsupportedVersion { .. } => WireErrorKind::UnsupportedVersion,
            WireError::Encode { .. } => WireErrorKind::Encode,
            WireError::Io(_) => WireErrorKind::Io,
        }
    }
}
