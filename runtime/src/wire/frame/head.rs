//! What addresses a call or a one-way message: object, method word,
//! flags and the metadata block (PROTOCOL.md 6.10).

use bytes::BytesMut;
use serde::Serialize;

use super::{FLAG_METADATA, put};
use crate::id::ObjectId;

/// What addresses a call or a one-way message, besides its payload.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// The object called.
    pub object: ObjectId,
    /// The method word.
    pub method: u64,
    /// Flags other than [`FLAG_METADATA`].
    pub flags: u32,
    /// The metadata block (see [`crate::Metadata::encode`]); empty: none.
    pub metadata: &'a [u8],
}

impl<'a> Head<'a> {
    /// `method` of `object`, with no flags and no metadata.
    pub fn new(object: ObjectId, method: u64) -> Self {
        Head {
            object,
            method,
            flags: 0,
            metadata: &[],
        }
    }

    pub(super) fn flags(&self) -> u32 {
        if self.metadata.is_empty() {
            self.flags & !FLAG_METADATA
        } else {
            self.flags | FLAG_METADATA
        }
    }

    /// Writes `header` (the kind's postcard header, `flags` included),
    /// then the metadata block if there is one.
    pub(super) fn write<H: Serialize>(&self, b: &mut BytesMut, header: &H) {
        put(b, header);
        if !self.metadata.is_empty() {
            put(b, self.metadata);
        }
    }
}
