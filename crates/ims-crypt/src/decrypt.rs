//! Streaming decryption of a whole blob or an inclusive plaintext range.

use std::io;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;

use crate::header::{HEADER_LEN, Header};
use crate::layout::{Layout, SegmentRange};
use crate::segment::{SegmentCipher, TAG_LEN};
use crate::{CryptError, DataKey};

/// Decrypts segments given the blob's header, which the caller read separately.
///
/// `input` must be exactly the object bytes [`SegmentRange::ciphertext`] names for
/// `range` (`None` = the whole blob; see [`Layout::range`] and [`Layout::whole`]).
/// Yields exactly the requested plaintext. A segment that fails authentication, input
/// that ends early or runs on past the last needed segment, or a `plaintext_len` that does
/// not match the stored blob yields an `InvalidData` error ("integrity failure") and no
/// byte of the failing segment. A range that does not reach the blob's last segment
/// cannot detect a wrong `plaintext_len`, only a read of the last segment can.
pub fn decrypt_stream<S>(
    key: &DataKey,
    header: &Header,
    plaintext_len: u64,
    range: Option<RangeInclusive<u64>>,
    input: S,
) -> Result<DecryptStream<S>, CryptError>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    let reader = Reader::new(
        SegmentCipher::new(key, header),
        header,
        plaintext_len,
        range,
    )?;
    Ok(DecryptStream::new(input, Phase::Segments(reader, true)))
}

/// Decrypts from the whole object stream, starting at offset 0 with the header.
///
/// Bytes before the first needed segment are read and dropped. When the range ends
/// before the blob's last segment the stream stops after it without reading the rest;
/// when it reaches the end, trailing bytes are an error. Errors as for [`decrypt_stream`];
/// a malformed header is an `InvalidData` error too.
pub fn decrypt_object_stream<S>(
    key: &DataKey,
    plaintext_len: u64,
    range: Option<RangeInclusive<u64>>,
    input: S,
) -> Result<DecryptStream<S>, CryptError>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    // The range can be judged before the segment size is known.
    if let Some(r) = &range {
        Layout::new(plaintext_len, crate::MAX_SEG_LOG2)?.range(*r.start(), *r.end())?;
    }
    let start = HeaderPhase {
        key: key.duplicate(),
        plaintext_len,
        range,
        buf: BytesMut::with_capacity(HEADER_LEN),
    };
    Ok(DecryptStream::new(input, Phase::Header(Box::new(start))))
}

/// The stream returned by [`decrypt_stream`] and [`decrypt_object_stream`].
pub struct DecryptStream<S> {
    input: Pin<Box<S>>,
    phase: Phase,
    pending: Bytes,
    input_done: bool,
}

/// Object mode, before the header has been read.
struct HeaderPhase {
    key: DataKey,
    plaintext_len: u64,
    range: Option<RangeInclusive<u64>>,
    buf: BytesMut,
}

enum Phase {
    Header(Box<HeaderPhase>),
    /// Dropping this many bytes before the first needed segment.
    Skip(Reader, u64),
    /// Reading segments; the flag says whether the input must end after the last one.
    Segments(Reader, bool),
    Done,
}

/// What one step over the buffered input produced.
enum Step {
    Emit(Bytes),
    NeedInput,
    Again,
}

/// Segment-by-segment state shared by both modes.
struct Reader {
    cipher: SegmentCipher,
    layout: Layout,
    plan: SegmentRange,
    index: u64,
    buf: BytesMut,
}

impl Reader {
    fn new(
        cipher: SegmentCipher,
        header: &Header,
        plaintext_len: u64,
        range: Option<RangeInclusive<u64>>,
    ) -> Result<Self, CryptError> {
        let layout = Layout::new(plaintext_len, header.seg_log2())?;
        let plan = match range {
            Some(r) => layout.range(*r.start(), *r.end())?,
            None => layout.whole(),
        };
        Ok(Self {
            buf: BytesMut::with_capacity(cipher.segment_size() + TAG_LEN),
            cipher,
            layout,
            index: plan.first_segment,
            plan,
        })
    }

    /// Stored length of the current segment.
    fn need(&self) -> usize {
        (self.layout.segment_plaintext_len(self.index) + TAG_LEN as u64) as usize
    }

    fn is_final(&self) -> bool {
        self.index == self.plan.last_segment
    }

    /// Authenticates the buffered segment and returns its part of the range.
    fn open(&mut self) -> Result<Bytes, CryptError> {
        let index = u32::try_from(self.index).map_err(|_| CryptError::Integrity("index"))?;
        let last = self.layout.is_last(self.index);
        let fresh = BytesMut::with_capacity(self.cipher.segment_size() + TAG_LEN);
        let mut seg = std::mem::replace(&mut self.buf, fresh);
        let plain_len = self.cipher.open_in_place(index, last, &mut seg)?.len();
        let seg_start = self.index << self.layout.seg_log2();
        let first = (self.plan.first_segment << self.layout.seg_log2()) + self.plan.skip;
        let end = first + self.plan.keep;
        seg.truncate((end.min(seg_start + plain_len as u64) - seg_start) as usize);
        seg.advance((first.max(seg_start) - seg_start) as usize);
        self.index += 1;
        Ok(seg.freeze())
    }
}

impl<S> DecryptStream<S> {
    fn new(input: S, phase: Phase) -> Self {
        Self {
            input: Box::pin(input),
            phase,
            pending: Bytes::new(),
            input_done: false,
        }
    }

    /// Moves up to `need - buf.len()` pending bytes into `buf`; true once it is full.
    fn fill(pending: &mut Bytes, buf: &mut BytesMut, need: usize) -> bool {
        let n = need.saturating_sub(buf.len()).min(pending.len());
        buf.extend_from_slice(&pending[..n]);
        pending.advance(n);
        buf.len() == need
    }

    fn truncated(&self) -> Result<Step, CryptError> {
        if self.input_done {
            Err(CryptError::Integrity("ciphertext truncated"))
        } else {
            Ok(Step::NeedInput)
        }
    }

    fn step(&mut self) -> Result<Step, CryptError> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => Ok(Step::Again),
            Phase::Header(mut h) => {
                if !Self::fill(&mut self.pending, &mut h.buf, HEADER_LEN) {
                    self.phase = Phase::Header(h);
                    return self.truncated();
                }
                let header = Header::decode(&h.buf)?;
                let cipher = SegmentCipher::new(&h.key, &header);
                let reader = Reader::new(cipher, &header, h.plaintext_len, h.range.take())?;
                let skip = reader.plan.ciphertext.start - HEADER_LEN as u64;
                self.phase = Phase::Skip(reader, skip);
                Ok(Step::Again)
            }
            Phase::Skip(reader, skip) => {
                let n = skip.min(self.pending.len() as u64);
                self.pending.advance(n as usize);
                if n == skip {
                    let strict = reader.layout.is_last(reader.plan.last_segment);
                    self.phase = Phase::Segments(reader, strict);
                    return Ok(Step::Again);
                }
                self.phase = Phase::Skip(reader, skip - n);
                self.truncated()
            }
            Phase::Segments(reader, strict) => self.segment_step(reader, strict),
        }
    }

    fn segment_step(&mut self, mut r: Reader, strict: bool) -> Result<Step, CryptError> {
        let need = r.need();
        if !Self::fill(&mut self.pending, &mut r.buf, need) {
            self.phase = Phase::Segments(r, strict);
            return self.truncated();
        }
        if r.is_final() && strict {
            // Only hand out the final segment once the input is known to end with it.
            if !self.pending.is_empty() {
                return Err(CryptError::Integrity(
                    "trailing data after the last segment",
                ));
            }
            if !self.input_done {
                self.phase = Phase::Segments(r, strict);
                return Ok(Step::NeedInput);
            }
        }
        let out = r.open()?;
        if r.index <= r.plan.last_segment {
            self.phase = Phase::Segments(r, strict);
        }
        Ok(if out.is_empty() {
            Step::Again
        } else {
            Step::Emit(out)
        })
    }
}

impl<S> Stream for DecryptStream<S>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if matches!(this.phase, Phase::Done) {
                return Poll::Ready(None);
            }
            match this.step() {
                Err(e) => {
                    this.phase = Phase::Done;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Ok(Step::Emit(b)) => return Poll::Ready(Some(Ok(b))),
                Ok(Step::Again) => continue,
                Ok(Step::NeedInput) => {}
            }
            match ready!(this.input.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => this.pending = chunk,
                Some(Err(e)) => {
                    this.phase = Phase::Done;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.input_done = true,
            }
        }
    }
}
