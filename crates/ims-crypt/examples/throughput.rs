//! Seal and open throughput on one core, in memory.
//!
//! `cargo run --release -p ims-crypt --example throughput [MiB] [seg_log2]`
//! (defaults: 1024 MiB, 64 KiB segments). Reports the segment core (in place, no
//! copies), the slice helpers and the stream adapters fed 8 MiB chunks.

use std::io;
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt, executor::block_on, stream};
use ims_crypt::{
    DataKey, Header, Layout, SegmentCipher, TAG_LEN, decrypt_object_stream, encrypt_stream,
    open_blob, seal_blob,
};

fn report(what: &str, bytes: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{what:<34} {:>8.0} MB/s  ({secs:.3} s)",
        bytes as f64 / secs / 1e6
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(1024, |a| a.parse().expect("MiB"));
    let seg_log2: u8 = args.next().map_or(16, |a| a.parse().expect("seg_log2"));
    let len = mib << 20;
    let key = DataKey::generate().expect("rng");
    let header = Header::with_seg_log2([7; 16], seg_log2).expect("header");
    let layout = Layout::new(len as u64, seg_log2).expect("layout");
    let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    println!(
        "{mib} MiB, {} segments of {} bytes",
        layout.segment_count(),
        layout.segment_size()
    );

    core_seal_open(&key, &header, &layout, &plain);
    let object = slices(&key, &header, &plain);
    streams(&key, &header, plain, object);
}

/// The segment core alone: seal every segment in place, then open every segment.
fn core_seal_open(key: &DataKey, header: &Header, layout: &Layout, plain: &[u8]) {
    let cipher = SegmentCipher::new(key, header);
    let seg = cipher.segment_size();
    let mut object = vec![0u8; layout.ciphertext_len() as usize - 64];
    for (i, chunk) in plain.chunks(seg).enumerate() {
        object[i * (seg + TAG_LEN)..][..chunk.len()].copy_from_slice(chunk);
    }
    let start = Instant::now();
    for (i, unit) in object.chunks_mut(seg + TAG_LEN).enumerate() {
        let (data, tag) = unit.split_at_mut(unit.len() - TAG_LEN);
        let last = layout.is_last(i as u64);
        tag.copy_from_slice(&cipher.seal_in_place(i as u32, last, data));
    }
    report("seal_in_place (core)", plain.len(), start);
    let start = Instant::now();
    for (i, unit) in object.chunks_mut(seg + TAG_LEN).enumerate() {
        let last = layout.is_last(i as u64);
        cipher.open_in_place(i as u32, last, unit).expect("open");
    }
    report("open_in_place (core)", plain.len(), start);
}

/// The slice helpers, which copy once each way into fresh memory.
fn slices(key: &DataKey, header: &Header, plain: &[u8]) -> Vec<u8> {
    let start = Instant::now();
    let object = seal_blob(key, header, plain).expect("seal");
    report("seal_blob (copy + seal)", plain.len(), start);
    let start = Instant::now();
    let back = open_blob(key, &object, plain.len() as u64).expect("open");
    report("open_blob (copy + open)", plain.len(), start);
    assert!(back == plain);
    object
}

/// The stream adapters fed 8 MiB chunks, as a file or socket reader would, with each
/// output dropped once counted, as a writer would.
fn streams(key: &DataKey, header: &Header, plain: Vec<u8>, object: Vec<u8>) {
    let len = plain.len();
    let start = Instant::now();
    let sealed = block_on(count(encrypt_stream(key, header, chunks(plain))));
    report("encrypt_stream (8 MiB chunks)", len, start);
    assert_eq!(sealed, object.len());
    let start = Instant::now();
    let dec = decrypt_object_stream(key, len as u64, None, chunks(object)).expect("plan");
    let opened = block_on(count(dec));
    report("decrypt_object_stream (8 MiB)", len, start);
    assert_eq!(opened, len);
}

/// `data` as a stream of 8 MiB slices, without copying.
fn chunks(data: Vec<u8>) -> impl Stream<Item = io::Result<Bytes>> {
    let len = data.len();
    let data = Bytes::from(data);
    stream::iter((0..len).step_by(8 << 20))
        .map(move |at| Ok(data.slice(at..(at + (8 << 20)).min(len))))
}

async fn count(s: impl Stream<Item = io::Result<Bytes>>) -> usize {
    s.fold(0, |n, r| async move { n + r.expect("stream").len() })
        .await
}
