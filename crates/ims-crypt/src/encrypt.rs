//! Streaming encryption: plaintext chunks in, header then sealed segments out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;

use crate::header::Header;
use crate::segment::{SegmentCipher, TAG_LEN};
use crate::{CryptError, DataKey};

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
    let cipher = SegmentCipher::new(key, header);
    let seg = cipher.segment_size();
    EncryptStream {
        input: Box::pin(input),
        cipher,
        header: Some(header.encode()),
        buf: BytesMut::with_capacity(seg + TAG_LEN),
        pending: Bytes::new(),
        index: 0,
        plaintext_len: 0,
        input_done: false,
        done: false,
    }
}

/// The stream returned by [`encrypt_stream`].
pub struct EncryptStream<S> {
    input: Pin<Box<S>>,
    cipher: SegmentCipher,
    header: Option<[u8; crate::HEADER_LEN]>,
    /// Plaintext of the segment being filled; sealed in place, then handed out.
    buf: BytesMut,
    /// The unconsumed rest of the current input chunk.
    pending: Bytes,
    index: u64,
    plaintext_len: u64,
    input_done: bool,
    done: bool,
}

impl<S> EncryptStream<S> {
    /// Plaintext bytes consumed so far; the blob's length once the stream has ended.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Seals the buffered segment and hands it out with its tag appended.
    fn seal(&mut self, last: bool) -> io::Result<Bytes> {
        let index =
            u32::try_from(self.index).map_err(|_| CryptError::TooLarge(self.plaintext_len))?;
        let fresh = BytesMut::with_capacity(self.cipher.segment_size() + TAG_LEN);
        let mut seg = std::mem::replace(&mut self.buf, fresh);
        let tag = self.cipher.seal_in_place(index, last, &mut seg);
        seg.extend_from_slice(&tag);
        self.index += 1;
        Ok(seg.freeze())
    }

    /// Moves input into the segment buffer; returns a sealed segment when one is
    /// complete and known not to be the last.
    fn absorb(&mut self) -> Option<io::Result<Bytes>> {
        let room = self.cipher.segment_size() - self.buf.len();
        if room == 0 {
            return Some(self.seal(false));
        }
        let n = room.min(self.pending.len());
        self.buf.extend_from_slice(&self.pending[..n]);
        self.pending.advance(n);
        self.plaintext_len += n as u64;
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
            return Poll::Ready(Some(Ok(Bytes::copy_from_slice(&h))));
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
