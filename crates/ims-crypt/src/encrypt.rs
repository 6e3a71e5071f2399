//! Streaming encryption: plaintext chunks in, header then sealed segments out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures::Stream;

use crate::header::Header;
use crate::{DataKey, Sealer};

/// Encrypts a stream of plaintext chunks of any sizes into an IMSE v1 object.
///
/// The first item is the 64-byte header; each later item is one sealed segment
/// (ciphertext ‖ tag). Memory stays at one segment plus the input chunk being consumed.
/// A full segment is held back until the next byte or the end of the input shows whether
/// it is the last one. An input error is passed on and ends the stream.
pub fn encrypt_stream<S>(key: &DataKey, header: &Header, input: S) -> EncryptStream<S>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    let sealer = Sealer::new(key, header);
    EncryptStream {
        input: Box::pin(input),
        header: Some(sealer.header()),
        sealer,
        pending: Bytes::new(),
        input_done: false,
        done: false,
    }
}

/// The stream returned by [`encrypt_stream`].
pub struct EncryptStream<S> {
    input: Pin<Box<S>>,
    /// The segment being filled, sealed in place, then handed out.
    sealer: Sealer,
    header: Option<Bytes>,
    /// The unconsumed rest of the current input chunk.
    pending: Bytes,
    input_done: bool,
    done: bool,
}

impl<S> EncryptStream<S> {
    /// Plaintext bytes consumed so far; the blob's length once the stream has ended.
    pub fn plaintext_len(&self) -> u64 {
        self.sealer.plaintext_len()
    }

    /// Seals the buffered segment and hands it out with its tag appended.
    fn seal(&mut self, last: bool) -> io::Result<Bytes> {
        Ok(self.sealer.seal(last)?)
    }

    /// Moves input into the segment buffer; returns a sealed segment when one is
    /// complete and known not to be the last.
    fn absorb(&mut self) -> Option<io::Result<Bytes>> {
        if self.sealer.room() == 0 {
            return Some(self.seal(false));
        }
        let n = self.sealer.absorb(&self.pending);
        self.pending.advance(n);
        None
    }
}

impl<S> Stream for EncryptStream<S>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(h) = this.header.take() {
            return Poll::Ready(Some(Ok(h)));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if !this.pending.is_empty() {
                if let Some(out) = this.absorb() {
                    this.done = out.is_err();
                    return Poll::Ready(Some(out));
                }
                continue;
            }
            if this.input_done {
                this.done = true;
                return Poll::Ready(Some(this.seal(true)));
            }
            match ready!(this.input.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => this.pending = chunk,
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.input_done = true,
            }
        }
    }
}
