"""Issue 15, the built-in KMS through huaweicloudsdkkms 3.1.219, unchanged: create a key,
create and decrypt a data key, encrypt one of the caller's own, disable and enable the key,
schedule and cancel its deletion, with the documented KMS.xxxx codes for refused calls,
and another project's key that does not exist for the caller.
"""
import hashlib
import os

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import (CancelKeyDeletionRequest, CreateDatakeyRequest,
                                  CreateDatakeyRequestBody,
                                  CreateDatakeyWithoutPlaintextRequest, CreateKeyRequest,
                                  CreateKeyRequestBody, DecryptDatakeyRequest,
                                  DecryptDatakeyRequestBody, DeleteKeyRequest,
                                  DisableKeyRequest, EnableKeyRequest, EncryptDatakeyRequest,
                                  EncryptDatakeyRequestBody, ListKeyDetailRequest,
                                  ListKeysRequest, ListKeysRequestBody, OperateKeyRequestBody,
                                  ScheduleKeyDeletionRequestBody)

from conftest import kms_sdk, unique


@pytest.fixture(scope="module")
def kms(ims):
    return kms_sdk(ims)


def refused(call, request):
    with pytest.raises(ClientRequestException) as e:
        call(request)
    return e.value.status_code, e.value.error_code


def create_key(kms, alias=None, **extra):
    body = CreateKeyRequestBody(key_alias=alias or unique("ims-test"), **extra)
    return kms.create_key(CreateKeyRequest(body=body)).key_info.key_id


def op(key_id):
    return OperateKeyRequestBody(key_id=key_id)


def describe(kms, key_id):
    return kms.list_key_detail(ListKeyDetailRequest(body=op(key_id))).key_info


def test_a_key_is_created_described_and_listed(kms):
    alias = unique("ims-test")
    key_id = create_key(kms, alias, key_spec="AES_256", key_usage="ENCRYPT_DECRYPT",
                        key_description="d")
    info = describe(kms, key_id)
    assert (info.key_alias, info.key_state, info.key_spec, info.key_description) == \
        (alias, "2", "AES_256", "d")
    assert info.creation_date.isdigit() and len(info.creation_date) == 13
    listed = kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1000")))
    assert key_id in listed.keys and listed.truncated == "false"
    assert isinstance(listed.total, int) and listed.total >= 1
    # Paging: a page of one, then the rest from its marker.
    create_key(kms)
    first = kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1")))
    assert len(first.keys) == 1 and first.truncated == "true" and first.next_marker == "1"
    rest = kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(
        limit="1000", marker=first.next_marker)))
    assert first.keys[0] not in rest.keys and len(rest.keys) == first.total - 1
    # The same alias again, a bad alias, an unknown spec.
    assert refused(kms.create_key, CreateKeyRequest(body=CreateKeyRequestBody(
        key_alias=alias))) == (400, "KMS.1104")
    assert refused(kms.create_key, CreateKeyRequest(body=CreateKeyRequestBody(
        key_alias="has space"))) == (400, "KMS.1101")
    assert refused(kms.create_key, CreateKeyRequest(body=CreateKeyRequestBody(
        key_alias="x/default"))) == (400, "KMS.1101")
    assert refused(kms.create_key, CreateKeyRequest(body=CreateKeyRequestBody(
        key_alias=unique("k"), key_spec="RSA_2048"))) == (400, "KMS.1110")


def test_data_keys_are_made_wrapped_and_unwrapped(kms):
    key_id = create_key(kms)
    made = kms.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(
        key_id=key_id, datakey_length="512")))
    plain = bytes.fromhex(made.plain_text)
    assert len(plain) == 64 and made.key_id == key_id
    assert made.plain_text.upper() not in made.cipher_text.upper()
    opened = kms.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=made.cipher_text, datakey_cipher_length="64")))
    assert bytes.fromhex(opened.data_key) == plain and opened.datakey_length == "64"
    assert opened.datakey_dgst.lower() == hashlib.sha256(plain).hexdigest()
    # Without plaintext; the default length is 256 bits.
    bare = kms.create_datakey_without_plaintext(CreateDatakeyWithoutPlaintextRequest(
        body=CreateDatakeyRequestBody(key_id=key_id, key_spec="AES_256")))
    opened = kms.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=bare.cipher_text, datakey_cipher_length="32")))
    assert len(bytes.fromhex(opened.data_key)) == 32
    # The caller's own data key: hex(DEK ‖ SHA-256(DEK)).
    dek = os.urandom(64)
    wrapped = kms.encrypt_datakey(EncryptDatakeyRequest(body=EncryptDatakeyRequestBody(
        key_id=key_id, plain_text=(dek + hashlib.sha256(dek).digest()).hex(),
        datakey_plain_length="64")))
    assert wrapped.datakey_length == "64"
    opened = kms.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=wrapped.cipher_text, datakey_cipher_length="64",
        )))
    assert bytes.fromhex(opened.data_key) == dek
    # Bound to the additional authenticated data it was wrapped with.
    with_aad = kms.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(
        key_id=key_id, additional_authenticated_data="context-1")))
    assert refused(kms.decrypt_datakey, DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=with_aad.cipher_text,
        additional_authenticated_data="context-2"))) == (400, "KMS.2201")
    # A wrong digest, a wrong length, a tampered or foreign ciphertext, bad lengths.
    bad_digest = (dek + bytes(32)).hex()
    assert refused(kms.encrypt_datakey, EncryptDatakeyRequest(body=EncryptDatakeyRequestBody(
        key_id=key_id, plain_text=bad_digest, datakey_plain_length="64"))) == \
        (400, "KMS.2103")
    assert refused(kms.encrypt_datakey, EncryptDatakeyRequest(body=EncryptDatakeyRequestBody(
        key_id=key_id, plain_text=(dek + hashlib.sha256(dek).digest()).hex(),
        datakey_plain_length="32"))) == (400, "KMS.2104")
    tampered = made.cipher_text[:-2] + ("00" if made.cipher_text[-2:] != "00" else "11")
    assert refused(kms.decrypt_datakey, DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=tampered))) == (400, "KMS.2201")
    other = create_key(kms)
    assert refused(kms.decrypt_datakey, DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=other, cipher_text=made.cipher_text))) == (400, "KMS.2201")
    assert refused(kms.decrypt_datakey, DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=made.cipher_text, datakey_cipher_length="32"))) == \
        (400, "KMS.2202")
    for length in ["7", "9000", "abc"]:
        assert refused(kms.create_datakey, CreateDatakeyRequest(body=CreateDatakeyRequestBody(
            key_id=key_id, datakey_length=length))) == (400, "KMS.1901")


def test_disable_enable_schedule_and_cancel_govern_use(kms):
    key_id = create_key(kms)
    new_dek = CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id))
    made = kms.create_datakey(new_dek)
    decrypt = DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=made.cipher_text))

    assert kms.disable_key(DisableKeyRequest(body=op(key_id))).key_info.key_state == "3"
    assert refused(kms.create_datakey, new_dek) == (400, "KMS.0209")
    assert refused(kms.decrypt_datakey, decrypt) == (400, "KMS.0209")
    assert refused(kms.disable_key, DisableKeyRequest(body=op(key_id))) == (400, "KMS.1301")
    assert kms.enable_key(EnableKeyRequest(body=op(key_id))).key_info.key_state == "2"
    assert refused(kms.enable_key, EnableKeyRequest(body=op(key_id))) == (400, "KMS.1201")
    assert kms.decrypt_datakey(decrypt).data_key == made.plain_text

    for days in ["6", "1097"]:
        assert refused(kms.delete_key, DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(
            key_id=key_id, pending_days=days))) == (400, "KMS.1401")
    scheduled = kms.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(
        key_id=key_id, pending_days="7")))
    assert scheduled.key_state == "4"
    info = describe(kms, key_id)
    assert info.key_state == "4" and info.scheduled_deletion_date.isdigit()
    assert refused(kms.decrypt_datakey, decrypt) == (400, "KMS.0210")
    assert refused(kms.delete_key, DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(
        key_id=key_id, pending_days="7"))) == (400, "KMS.1402")
    listed = kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(key_state="4")))
    assert listed.keys == [key_id]
    cancelled = kms.cancel_key_deletion(CancelKeyDeletionRequest(body=op(key_id)))
    assert cancelled.key_state == "3"
    assert refused(kms.cancel_key_deletion, CancelKeyDeletionRequest(body=op(key_id))) == \
        (400, "KMS.1501")
    assert describe(kms, key_id).scheduled_deletion_date == ""
    kms.enable_key(EnableKeyRequest(body=op(key_id)))
    assert kms.decrypt_datakey(decrypt).data_key == made.plain_text


def test_keys_are_private_to_their_project(ims, kms):
    key_id = create_key(kms)
    admin_kms = kms_sdk(ims, user="admin", project="admin")
    assert refused(admin_kms.list_key_detail, ListKeyDetailRequest(body=op(key_id))) == \
        (404, "KMS.0207")
    assert refused(admin_kms.create_datakey, CreateDatakeyRequest(
        body=CreateDatakeyRequestBody(key_id=key_id))) == (404, "KMS.0207")
    assert key_id not in admin_kms.list_keys(ListKeysRequest(body=ListKeysRequestBody())).keys
    assert refused(kms.list_key_detail, ListKeyDetailRequest(body=op("not-a-key"))) == \
        (400, "KMS.0205")
    assert refused(kms.list_key_detail, ListKeyDetailRequest(
        body=op("0d0466b0-e727-4d9c-b35d-f84bb474a37f"))) == (404, "KMS.0207")
