-- Encrypted image data and shared blobs (issue 15): the KMS key and the wrapped data key of an image whose
-- blob is encrypted at rest, as JSON ({"key_id","wrapped_key"}); NULL for plain blobs.
ALTER TABLE images ADD COLUMN sealing TEXT;
-- Copies share their source's blob: a blob is freed only when no image that is not
-- deleted names it (and no volume is an overlay on it).
CREATE INDEX images_location ON images (location);
