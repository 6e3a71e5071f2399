#!/usr/bin/env python3
"""Known-answer vectors for IMSE v1, computed with Python's `cryptography` (OpenSSL),
independently of the Rust code. Run from this directory:

    python3 gen_vectors.py > imse_v1.txt

Output: `key`, `salt`, `blob_id` lines, then one `vector` line per case:
`vector <name> <seg_log2> <plaintext_len> <object hex>`. The plaintext is byte
i = (i * 31 + 7) % 251, so the Rust test rebuilds it from the length.
"""
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY = bytes(range(32))
SALT = bytes(range(0x40, 0x60))
BLOB_ID = bytes(range(0xA0, 0xB0))


def plaintext(n):
    return bytes((i * 31 + 7) % 251 for i in range(n))


def header(seg_log2):
    # magic, version 1, alg 1 (AES-256-GCM), seg_log2, reserved, blob id, salt, 8 reserved
    return b"IMSE" + bytes([1, 1, seg_log2, 0]) + BLOB_ID + SALT + bytes(8)


def seal(seg_log2, data):
    head = header(seg_log2)
    assert len(head) == 64
    info = b"ims blob v1" + BLOB_ID
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=info).derive(KEY)
    aead = AESGCM(k)
    size = 1 << seg_log2
    count = max(1, -(-len(data) // size))
    out = head
    for i in range(count):
        last = 1 if i == count - 1 else 0
        nonce = bytes(7) + struct.pack(">I", i) + bytes([last])
        out += aead.encrypt(nonce, data[i * size:(i + 1) * size], head)
    return out


CASES = [
    ("three_segments", 12, 2 * 4096 + 100),
    ("exact_multiple", 12, 2 * 4096),
    ("empty", 12, 0),
    ("one_byte_64k", 16, 1),
]

print("key", KEY.hex())
print("salt", SALT.hex())
print("blob_id", BLOB_ID.hex())
for name, seg_log2, n in CASES:
    print("vector", name, seg_log2, n, seal(seg_log2, plaintext(n)).hex())
