//! Round trips through the streams for edge-case lengths and random chunkings.

mod common;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{Rng, S, drain, header, key, random_stream};
use futures::{StreamExt, executor::block_on, stream};
use ims_crypt::{
    DataKey, Layout, decrypt_object_stream, decrypt_stream, encrypt_stream, open_blob, seal_blob,
};

const LENGTHS: [usize; 7] = [0, 1, S - 1, S, S + 1, 2 * S, 3 * S + 5];

fn encrypt_random(plain: &[u8], rng: &mut Rng) -> Vec<u8> {
    let max = [1, 100, S - 1, S, 3 * S + 7][rng.below(5)];
    let (object, err) = drain(encrypt_stream(
        &key(),
        &header(),
        random_stream(plain, rng, max),
    ));
    assert!(err.is_none());
    object
}

#[test]
fn stream_round_trips_with_random_chunkings() {
    let mut rng = Rng::new(1);
    for len in LENGTHS {
        let plain = rng.bytes(len);
        let expected = seal_blob(&key(), &header(), &plain).unwrap();
        let layout = Layout::new(len as u64, common::SEG_LOG2).unwrap();
        for seed in 0..20 {
            let object = encrypt_random(&plain, &mut rng);
            assert_eq!(object, expected, "len {len} seed {seed}");
            assert_eq!(object.len() as u64, layout.ciphertext_len());
            let max = 1 + rng.below(2 * S);
            let input = random_stream(&object, &mut rng, max);
            let (got, err) = drain(decrypt_object_stream(&key(), len as u64, None, input).unwrap());
            assert!(err.is_none(), "len {len}: {err:?}");
            assert_eq!(got, plain, "len {len} seed {seed}");
            let body = random_stream(&object[64..], &mut rng, max);
            let (got, err) =
                drain(decrypt_stream(&key(), &header(), len as u64, None, body).unwrap());
            assert!(err.is_none(), "len {len}: {err:?}");
            assert_eq!(got, plain);
        }
    }
}

#[test]
fn slice_helpers_round_trip() {
    let mut rng = Rng::new(2);
    for len in LENGTHS {
        let plain = rng.bytes(len);
        let object = seal_blob(&key(), &header(), &plain).unwrap();
        assert_eq!(open_blob(&key(), &object, len as u64).unwrap(), plain);
    }
}

#[test]
fn fresh_headers_give_different_ciphertexts() {
    let plain = vec![0u8; 100];
    let a = seal_blob(&key(), &ims_crypt::Header::new([1; 16]).unwrap(), &plain).unwrap();
    let b = seal_blob(&key(), &ims_crypt::Header::new([1; 16]).unwrap(), &plain).unwrap();
    assert_ne!(a[64..], b[64..]);
}

#[test]
fn wrong_key_fails_without_output() {
    let plain = Rng::new(3).bytes(3 * S + 5);
    let object = seal_blob(&key(), &header(), &plain).unwrap();
    let other = DataKey::from_bytes([0x5B; 32]);
    let input = stream::iter([Ok(Bytes::from(object.clone()))]);
    let (got, err) = drain(decrypt_object_stream(&other, plain.len() as u64, None, input).unwrap());
    assert!(got.is_empty());
    common::assert_integrity(&err.unwrap());
    assert!(open_blob(&other, &object, plain.len() as u64).is_err());
}

#[test]
fn input_errors_propagate_through_both_streams() {
    let items = vec![
        Ok(Bytes::from(vec![1u8; S + 10])),
        Err(io::Error::other("disk on fire")),
    ];
    let (_, err) = drain(encrypt_stream(&key(), &header(), stream::iter(items)));
    assert_eq!(err.unwrap().to_string(), "disk on fire");

    let object = seal_blob(&key(), &header(), &[9u8; 3 * S]).unwrap();
    let items = vec![
        Ok(Bytes::copy_from_slice(&object[..2000])),
        Err(io::Error::other("reset")),
    ];
    let (got, err) =
        drain(decrypt_object_stream(&key(), 3 * S as u64, None, stream::iter(items)).unwrap());
    assert!(got.is_empty());
    assert_eq!(err.unwrap().to_string(), "reset");
}

#[test]
fn encryption_runs_ahead_of_the_input_by_at_most_two_chunks() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let input = stream::iter(0..1000).map(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from(vec![7u8; S]))
    });
    let mut enc = Box::pin(encrypt_stream(&key(), &header(), input));
    block_on(async {
        assert_eq!(enc.next().await.unwrap().unwrap().len(), 64);
        for i in 1..=5 {
            assert_eq!(enc.next().await.unwrap().unwrap().len(), S + 16);
            // Segment i is sealed once chunk i + 1 shows that more data follows.
            assert_eq!(pulled.load(Ordering::SeqCst), i + 1);
        }
    });
    // The sixth chunk is pulled but not yet moved into a segment.
    assert_eq!(enc.plaintext_len(), 5 * S as u64);
}

#[test]
fn decryption_emits_each_segment_as_it_arrives() {
    let plain = Rng::new(4).bytes(10 * S);
    let object = seal_blob(&key(), &header(), &plain).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let chunks: Vec<Bytes> = object.chunks(S + 16).map(Bytes::copy_from_slice).collect();
    let input = stream::iter(chunks).map(move |c| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(c)
    });
    let mut dec = Box::pin(decrypt_object_stream(&key(), plain.len() as u64, None, input).unwrap());
    block_on(async {
        let first = dec.next().await.unwrap().unwrap();
        assert_eq!(&first[..], &plain[..S]);
        // The header shifts segments by 64 bytes, so two chunks cover the first one.
        assert_eq!(pulled.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn streams_are_send_and_sync_for_server_bodies() {
    fn check<T: Send + Sync + Unpin + 'static>(_: &T) {}
    let input = stream::iter(Vec::<io::Result<Bytes>>::new());
    check(&encrypt_stream(&key(), &header(), input));
    let input = stream::iter(Vec::<io::Result<Bytes>>::new());
    check(&decrypt_object_stream(&key(), 0, None, input).unwrap());
    let input = stream::iter(Vec::<io::Result<Bytes>>::new());
    check(&decrypt_stream(&key(), &header(), 0, None, input).unwrap());
}

#[test]
fn encryptor_reports_the_plaintext_length_at_the_end() {
    let plain = Rng::new(5).bytes(2 * S + 3);
    let mut rng = Rng::new(6);
    let mut enc = Box::pin(encrypt_stream(
        &key(),
        &header(),
        random_stream(&plain, &mut rng, 999),
    ));
    block_on(async { while enc.next().await.is_some() {} });
    assert_eq!(enc.plaintext_len(), plain.len() as u64);
}
