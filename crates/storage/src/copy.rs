//! Rows in PostgreSQL's binary `COPY` format, encoded on the client into one buffer, for
//! `COPY ... FROM STDIN (FORMAT BINARY)` on a native connection ([`crate::Database::postgres_pool`]).
//! The buffer always starts with the format's header and, once finished, ends with its trailer;
//! what lies between is exactly the fields in the order they were given.

/// A `COPY ... (FORMAT BINARY)` input being built
/// (<https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>): the signature,
/// flags and header-extension length; per row the field count, then per field its length and
/// bytes (`int8` as 8 bytes, `text` as its UTF-8 bytes, `bytea` as is), all big-endian; a field
/// count of -1 as trailer.
///
/// It knows no table: the caller writes each row's fields in the column order of its `COPY`
/// statement, with the types of those columns.
#[derive(Debug)]
pub struct BinaryCopy {
    buffer: Vec<u8>,
}

/// A field longer than the format's 32-bit length word can state.
#[derive(Debug, thiserror::Error)]
#[error("a field of {0} bytes is too long")]
pub struct FieldTooLong(pub usize);

impl BinaryCopy {
    const SIGNATURE: &'static [u8; 11] = b"PGCOPY\n\xff\r\n\0";
    /// The bytes the format adds around the rows: the 19-byte header and the 2-byte trailer.
    pub const OVERHEAD: usize = 21;

    /// An input with room for `bytes` of rows besides the header and trailer (reserved at
    /// once, so a caller that counts its rows exactly never reallocates).
    pub fn with_capacity(bytes: usize) -> BinaryCopy {
        let mut buffer = Vec::with_capacity(bytes + Self::OVERHEAD);
        buffer.extend_from_slice(Self::SIGNATURE);
        buffer.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buffer.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        BinaryCopy { buffer }
    }

    /// Starts a row of `fields` fields; exactly that many must follow.
    pub fn row(&mut self, fields: i16) {
        self.buffer.extend_from_slice(&fields.to_be_bytes());
    }

    /// An `int8` (BIGINT) field.
    pub fn int8(&mut self, value: i64) {
        self.buffer.extend_from_slice(&8i32.to_be_bytes());
        self.buffer.extend_from_slice(&value.to_be_bytes());
    }

    /// A `text` field: its UTF-8 bytes.
    pub fn text(&mut self, value: &str) -> Result<(), FieldTooLong> {
        self.bytea(value.as_bytes())
    }

    /// A `bytea` field: its bytes as they are.
    pub fn bytea(&mut self, value: &[u8]) -> Result<(), FieldTooLong> {
        let length = i32::try_from(value.len()).map_err(|_| FieldTooLong(value.len()))?;
        self.buffer.extend_from_slice(&length.to_be_bytes());
        self.buffer.extend_from_slice(value);
        Ok(())
    }

    /// The whole input, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        self.buffer
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    const TRAILER: &[u8] = b"\xff\xff";

    #[test]
    fn copy_rows_are_the_binary_format_field_by_field() {
        let mut rows = BinaryCopy::with_capacity(0);
        rows.row(3);
        rows.int8(-2);
        rows.text("hé").unwrap();
        rows.bytea(&[]).unwrap();
        let data = rows.finish();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        expected.extend_from_slice(&[0, 0, 0, 3, b'h', 0xc3, 0xa9]);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        expected.extend_from_slice(TRAILER);
        assert_eq!(data, expected);
    }

    #[test]
    fn an_empty_copy_is_header_and_trailer() {
        let data = BinaryCopy::with_capacity(0).finish();
        assert_eq!(data, [HEADER, TRAILER].concat());
        assert_eq!(data.len(), 21);
        assert_eq!(data.len(), BinaryCopy::OVERHEAD);
    }
}
