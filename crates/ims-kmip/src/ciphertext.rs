//! What Encrypt returns, and its envelope: one opaque blob a caller can store.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The block cipher mode a ciphertext was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CipherMode {
    /// AES-GCM with a 16-byte tag, computed and checked by the server (KMIP 1.4).
    AesGcm,
    /// AES-CBC with PKCS#5 padding and a random IV, for servers without GCM. The plaintext
    /// is followed by a SHA-256 of the additional data and the plaintext before encryption,
    /// and decrypt checks it: CBC has no authentication, and this catches altered or
    /// misattributed ciphertexts (it is not a MAC against someone who knows the plaintext).
    AesCbcPkcs5Sha256,
}

impl CipherMode {
    fn code(self) -> u8 {
        match self {
            CipherMode::AesGcm => 1,
            CipherMode::AesCbcPkcs5Sha256 => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(CipherMode::AesGcm),
            2 => Some(CipherMode::AesCbcPkcs5Sha256),
            _ => None,
        }
    }
}

/// Data encrypted by the KMS, with what decrypting it needs besides the key. Made only by
/// [`crate::KmipClient::encrypt`] and [`Ciphertext::from_bytes`], so it is always
/// well-formed (see `check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    mode: CipherMode,
    iv: Vec<u8>,
    tag: Option<Vec<u8>>,
    data: Vec<u8>,
}

/// A blob that is not a [`Ciphertext`] envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed KMIP ciphertext envelope: {0}")]
pub struct MalformedCiphertext(pub &'static str);

/// The envelope's first bytes.
const MAGIC: &[u8; 2] = b"KC";
/// The envelope version this code writes.
const VERSION: u8 = 1;
const HEADER: usize = 10;

/// The length of the SHA-256 check appended to CBC plaintexts.
pub(crate) const CBC_CHECK_LEN: usize = 32;

impl Ciphertext {
    /// A ciphertext from its parts, if they are well-formed for the mode.
    pub(crate) fn new(
        mode: CipherMode,
        iv: Vec<u8>,
        tag: Option<Vec<u8>>,
        data: Vec<u8>,
    ) -> Result<Self, MalformedCiphertext> {
        let ct = Ciphertext {
            mode,
            iv,
            tag,
            data,
        };
        ct.check()?;
        Ok(ct)
    }

    /// The mode used; decrypt uses the same.
    pub fn mode(&self) -> CipherMode {
        self.mode
    }

    /// The IV or nonce (12 bytes for GCM, 16 for CBC).
    pub fn iv(&self) -> &[u8] {
        &self.iv
    }

    /// The authentication tag (GCM only).
    pub fn tag(&self) -> Option<&[u8]> {
        self.tag.as_deref()
    }

    /// The encrypted bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The envelope: "KC", version 1, mode, IV length, tag length (0 without tag), data
    /// length (u32, big-endian), IV, tag, data. The lengths make a truncated blob an error
    /// here rather than a failed decryption later.
    pub fn to_bytes(&self) -> Vec<u8> {
        let tag = self.tag.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER + self.iv.len() + tag.len() + self.data.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.mode.code());
        out.push(self.iv.len() as u8);
        out.push(tag.len() as u8);
        out.extend_from_slice(&(self.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(tag);
        out.extend_from_slice(&self.data);
        out
    }

    /// Reads an envelope written by [`Ciphertext::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, MalformedCiphertext> {
        if b.len() < HEADER || &b[..2] != MAGIC {
            return Err(MalformedCiphertext("not an envelope"));
        }
        if b[2] != VERSION {
            return Err(MalformedCiphertext("unknown version"));
        }
        let mode = CipherMode::from_code(b[3]).ok_or(MalformedCiphertext("unknown mode"))?;
        let (iv_len, tag_len) = (usize::from(b[4]), usize::from(b[5]));
        let data_len = u32::from_be_bytes([b[6], b[7], b[8], b[9]]) as usize;
        let rest = &b[HEADER..];
        match (iv_len + tag_len).checked_add(data_len) {
            Some(n) if n == rest.len() => {}
            Some(n) if n > rest.len() => return Err(MalformedCiphertext("truncated")),
            _ => return Err(MalformedCiphertext("bytes after the data")),
        }
        Ciphertext::new(
            mode,
            rest[..iv_len].to_vec(),
            (tag_len > 0).then(|| rest[iv_len..iv_len + tag_len].to_vec()),
            rest[iv_len + tag_len..].to_vec(),
        )
    }

    /// What a well-formed ciphertext of its mode has; the lengths must fit the envelope's
    /// length bytes.
    fn check(&self) -> Result<(), MalformedCiphertext> {
        let tag_len = self.tag.as_ref().map_or(0, Vec::len);
        match (self.mode, &self.tag) {
            (_, _) if self.iv.is_empty() => Err(MalformedCiphertext("no IV")),
            (_, _)
                if self.iv.len() > 255
                    || tag_len > 255
                    || u32::try_from(self.data.len()).is_err() =>
            {
                Err(MalformedCiphertext(
                    "IV, tag or data too long for the envelope",
                ))
            }
            (_, Some(t)) if t.is_empty() => Err(MalformedCiphertext("an empty tag")),
            (_, _) if self.data.is_empty() => Err(MalformedCiphertext("no data")),
            (CipherMode::AesGcm, None) => Err(MalformedCiphertext("GCM without a tag")),
            (CipherMode::AesCbcPkcs5Sha256, Some(_)) => Err(MalformedCiphertext("CBC with a tag")),
            (CipherMode::AesCbcPkcs5Sha256, None) if !self.data.len().is_multiple_of(16) => {
                Err(MalformedCiphertext("CBC data is not whole blocks"))
            }
            _ => Ok(()),
        }
    }
}

/// The SHA-256 that binds a CBC plaintext to its additional data: the additional data's
/// length (u64, big-endian), the additional data, the plaintext.
fn check(aad: &[u8], plaintext: &[u8]) -> [u8; CBC_CHECK_LEN] {
    let mut h = Sha256::new();
    h.update((aad.len() as u64).to_be_bytes());
    h.update(aad);
    h.update(plaintext);
    h.finalize().into()
}

/// The CBC plaintext: the data followed by its check.
pub(crate) fn with_check(plaintext: &[u8], aad: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(plaintext.len() + CBC_CHECK_LEN));
    out.extend_from_slice(plaintext);
    out.extend_from_slice(&check(aad, plaintext));
    out
}

/// Strips and verifies the check `with_check` added; `None` if it does not match (the
/// ciphertext was altered, or the additional data differs).
pub(crate) fn strip_check(
    mut decrypted: Zeroizing<Vec<u8>>,
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let n = decrypted.len().checked_sub(CBC_CHECK_LEN)?;
    let digest = check(aad, &decrypted[..n]);
    // Constant time, so a caller probing with altered ciphertexts learns nothing from timing.
    let diff = digest
        .iter()
        .zip(&decrypted[n..])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return None;
    }
    decrypted.truncate(n);
    Some(decrypted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcm() -> Ciphertext {
        Ciphertext::new(
            CipherMode::AesGcm,
            vec![7; 12],
            Some(vec![9; 16]),
            vec![1, 2, 3],
        )
        .unwrap()
    }

    #[test]
    fn the_envelope_is_laid_out_byte_by_byte() {
        let mut expected = b"KC\x01\x01\x0c\x10\x00\x00\x00\x03".to_vec();
        expected.extend([7; 12]);
        expected.extend([9; 16]);
        expected.extend([1, 2, 3]);
        assert_eq!(gcm().to_bytes(), expected);
        assert_eq!(Ciphertext::from_bytes(&expected).unwrap(), gcm());
    }

    #[test]
    fn cbc_round_trips_without_a_tag() {
        let ct = Ciphertext::new(
            CipherMode::AesCbcPkcs5Sha256,
            vec![3; 16],
            None,
            vec![5; 48],
        )
        .unwrap();
        let b = ct.to_bytes();
        assert_eq!(&b[..10], b"KC\x01\x02\x10\x00\x00\x00\x00\x30");
        assert_eq!(Ciphertext::from_bytes(&b).unwrap(), ct);
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let good = gcm().to_bytes();
        for cut in 0..good.len() {
            assert!(
                Ciphertext::from_bytes(&good[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut b = good.clone();
        b[0] = b'X';
        assert!(Ciphertext::from_bytes(&b).is_err());
        let mut b = good.clone();
        b[2] = 2;
        assert_eq!(
            Ciphertext::from_bytes(&b),
            Err(MalformedCiphertext("unknown version"))
        );
        let mut b = good.clone();
        b[3] = 9;
        assert_eq!(
            Ciphertext::from_bytes(&b),
            Err(MalformedCiphertext("unknown mode"))
        );
        // GCM without a tag; CBC with one; CBC with a partial block.
        let mut b = good.clone();
        b[5] = 0;
        assert!(Ciphertext::from_bytes(&b).is_err());
        let mut b = good.clone();
        b[3] = 2;
        assert!(Ciphertext::from_bytes(&b).is_err());
        let mut b = b"KC\x01\x02\x10\x00\x00\x00\x00\x14".to_vec();
        b.extend([0; 16 + 20]);
        assert!(Ciphertext::from_bytes(&b).is_err());
        // A byte too many.
        let mut b = good.clone();
        b.push(0);
        assert_eq!(
            Ciphertext::from_bytes(&b),
            Err(MalformedCiphertext("bytes after the data"))
        );
    }

    #[test]
    fn the_cbc_check_catches_any_change() {
        let key = b"a data key of 32 bytes, exactly!";
        let sealed = with_check(key, b"image-1");
        assert_eq!(sealed.len(), 32 + CBC_CHECK_LEN);
        let back = strip_check(sealed.clone(), b"image-1").unwrap();
        assert_eq!(back.as_slice(), key);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x20;
            assert!(strip_check(bad, b"image-1").is_none(), "flip at {i}");
        }
        assert!(strip_check(Zeroizing::new(vec![0; 31]), b"").is_none());
    }

    #[test]
    fn the_cbc_check_binds_the_additional_data() {
        let sealed = with_check(b"k", b"image-1");
        assert!(strip_check(sealed.clone(), b"image-2").is_none());
        assert!(strip_check(sealed.clone(), b"").is_none());
        // The length prefix keeps the boundary between additional data and data.
        let a = with_check(b"bc", b"a");
        assert!(strip_check(Zeroizing::new([b"b".as_slice(), &a[2..]].concat()), b"ab").is_none());
        assert_eq!(with_check(b"", b"").len(), CBC_CHECK_LEN);
    }

    #[test]
    fn parts_that_do_not_fit_are_refused() {
        let long_iv = Ciphertext::new(CipherMode::AesGcm, vec![0; 256], Some(vec![1; 16]), vec![1]);
        assert!(long_iv.is_err());
        let empty_tag = Ciphertext::new(CipherMode::AesGcm, vec![0; 12], Some(vec![]), vec![1]);
        assert!(empty_tag.is_err());
        assert!(Ciphertext::new(CipherMode::AesGcm, vec![0; 12], Some(vec![1]), vec![]).is_err());
    }
}
