//! Payload encoding: postcard, written straight into the outgoing buffer.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A postcard flavor that appends to a `BytesMut`, copying byte slices in
/// one piece (byte buffers are never written element by element).
struct BytesMutFlavor<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for BytesMutFlavor<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.put_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends the postcard encoding of `v` to `buf`.
pub fn encode_into<T: Serialize + ?Sized>(
    v: &T,
    buf: &mut BytesMut,
) -> Result<(), postcard::Error> {
    postcard::serialize_with_flavor(v, BytesMutFlavor(buf))
}

/// Encodes `v` into a fresh buffer.
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Bytes, postcard::Error> {
    let mut b = BytesMut::new();
    encode_into(v, &mut b)?;
    Ok(b.freeze())
}

/// Decodes a whole payload; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, postcard::Error> {
    let (v, rest) = postcard::take_from_bytes(b)?;
    if rest.is_empty() {
        Ok(v)
    } else {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}
