//! Payload encoding: postcard, written straight into the outgoing buffer,
//! and decoded with a bound on nesting ([`MAX_DEPTH`]).

use std::cell::Cell;

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

/// The deepest nesting a payload may have: values nested more deeply are
/// refused with [`DecodeError::TooDeep`] before they can exhaust the stack.
///
/// serde decodes a nested value by recursion, and postcard puts no bound
/// on it: a payload of a million `0x01` bytes (a million `Some`s, or a
/// million list variants) decoded as a recursive type would overflow the
/// stack and abort the process. Every level of nesting serde sees counts
/// once: a struct, a tuple or tuple struct, a newtype struct, a sequence,
/// a map, an enum variant and an `Option`'s `Some`. A recursive type pays
/// one or more levels per step (`enum Tree { Leaf, Node(Vec<Tree>) }` pays
/// two: the variant and the `Vec`); the arguments of a remote method are
/// one tuple, and a reply one `Result`, which is one level more. Decoding
/// 128 levels takes well under 256 KiB of stack, even in a debug build.
pub const MAX_DEPTH: usize = 128;

/// Why a payload did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload nests deeper than the limit ([`MAX_DEPTH`] for
    /// [`decode`]).
    #[error("payload nesting deeper than {limit} levels")]
    TooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// postcard refused the bytes.
    #[error(transparent)]
    Postcard(#[from] postcard::Error),
    /// The value ended before the payload did.
    #[error("trailing bytes after the payload")]
    TrailingBytes,
}

/// Decodes a whole payload; trailing bytes are an error, and so is nesting
/// deeper than [`MAX_DEPTH`].
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, DecodeError> {
    decode_with_limit(b, MAX_DEPTH)
}

/// [`decode`] with another nesting limit: at most `max_depth` levels, each
/// as [`MAX_DEPTH`] counts them.
pub fn decode_with_limit<T: DeserializeOwned>(
    b: &[u8],
    max_depth: usize,
) -> Result<T, DecodeError> {
    let mut de = postcard::Deserializer::from_bytes(b);
    let too_deep = Cell::new(false);
    match T::deserialize(depth::Limited::new(&mut de, max_depth, &too_deep)) {
        Ok(v) => {
            if de.finalize()?.is_empty() {
                Ok(v)
            } else {
                Err(DecodeError::TrailingBytes)
            }
        }
        Err(_) if too_deep.get() => Err(DecodeError::TooDeep { limit: max_depth }),
        Err(e) => Err(DecodeError::Postcard(e)),
    }
}

/// A serde `Deserializer` adapter that bounds the nesting depth.
///
/// Every wrapper carries the number of levels still allowed (`left`) and
/// the flag it raises on refusal. Recursion in serde goes through a
/// visitor being handed something to recurse into (`visit_some`,
/// `visit_newtype_struct`, `visit_seq`, `visit_map`, `visit_enum`); the
/// wrapped [`Visitor`](serde::de::Visitor) checks `left` there and hands
/// the inner visitor a wrapped access or deserializer one level lower.
/// Seeds get wrapped too, so the elements, keys, values and variant
/// contents they decode go through [`Limited`] again. Nothing recurses
/// past the limit: the refusal is returned before the nested visit.
///
/// The refusal is a serde custom error, which postcard cannot carry a
/// message in; the flag tells it apart from others.
mod depth {
    use std::cell::Cell;
    use std::fmt;

    use serde::de::{
        self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess,
        Visitor,
    };

    /// The state every wrapper carries.
    #[derive(Clone, Copy)]
    struct Budget<'a> {
        /// Levels of nesting still allowed below this point.
        left: usize,
        /// Raised when a payload went past the limit.
        too_deep: &'a Cell<bool>,
    }

    impl<'a> Budget<'a> {
        /// The budget one level down, or the refusal.
        #[inline]
        fn descend<E: de::Error>(self) -> Result<Budget<'a>, E> {
            match self.left.checked_sub(1) {
                Some(left) => Ok(Budget {
                    left,
                    too_deep: self.too_deep,
                }),
                None => {
                    self.too_deep.set(true);
                    Err(E::custom("payload nests too deeply"))
                }
            }
        }
    }

    /// A deserializer whose nested values may go at most `left` levels
    /// deeper.
    pub(super) struct Limited<'a, D> {
        de: D,
        budget: Budget<'a>,
    }

    impl<'a, D> Limited<'a, D> {
        pub(super) fn new(de: D, max_depth: usize, too_deep: &'a Cell<bool>) -> Self {
            Limited {
                de,
                budget: Budget {
                    left: max_depth,
                    too_deep,
                },
            }
        }
    }

    /// A visitor that counts the levels it opens.
    struct Wrap<'a, V> {
        visitor: V,
        budget: Budget<'a>,
    }

    /// Access to a sequence's elements, each decoded through [`Limited`].
    struct Seq<'a, A> {
        access: A,
        budget: Budget<'a>,
    }

    /// Access to a map's keys and values, each decoded through [`Limited`].
    struct Map<'a, A> {
        access: A,
        budget: Budget<'a>,
    }

    /// Access to an enum's variant, decoded through [`Limited`].
    struct Enum<'a, A> {
        access: A,
        budget: Budget<'a>,
    }

    /// Access to a variant's contents, decoded through [`Limited`].
    struct Variant<'a, A> {
        access: A,
        budget: Budget<'a>,
    }

    /// A seed whose deserializer is wrapped in [`Limited`].
    struct Seed<'a, S> {
        seed: S,
        budget: Budget<'a>,
    }

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
        type Value = S::Value;

        #[inline]
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
            self.seed.deserialize(Limited {
                de,
                budget: self.budget,
            })
        }
    }

    macro_rules! forward_deserialize {
        ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
            $(
                #[inline]
                fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                    self.de.$method($($arg,)* Wrap { visitor, budget: self.budget })
                }
            )*
        };
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<'_, D> {
        type Error = D::Error;

        forward_deserialize! {
            deserialize_any();
            deserialize_bool();
            deserialize_i8();
            deserialize_i16();
            deserialize_i32();
            deserialize_i64();
            deserialize_i128();
            deserialize_u8();
            deserialize_u16();
            deserialize_u32();
            deserialize_u64();
            deserialize_u128();
            deserialize_f32();
            deserialize_f64();
            deserialize_char();
            deserialize_str();
            deserialize_string();
            deserialize_bytes();
            deserialize_byte_buf();
            deserialize_option();
            deserialize_unit();
            deserialize_unit_struct(name: &'static str);
            deserialize_newtype_struct(name: &'static str);
            deserialize_seq();
            deserialize_tuple(len: usize);
            deserialize_tuple_struct(name: &'static str, len: usize);
            deserialize_map();
            deserialize_struct(name: &'static str, fields: &'static [&'static str]);
            deserialize_enum(name: &'static str, variants: &'static [&'static str]);
            deserialize_identifier();
            deserialize_ignored_any();
        }

        #[inline]
        fn is_human_readable(&self) -> bool {
            self.de.is_human_readable()
        }
    }

    macro_rules! forward_visit {
        ($($method:ident($ty:ty);)*) => {
            $(
                #[inline]
                fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                    self.visitor.$method(v)
                }
            )*
        };
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.visitor.expecting(f)
        }

        forward_visit! {
            visit_bool(bool);
            visit_i8(i8);
            visit_i16(i16);
            visit_i32(i32);
            visit_i64(i64);
            visit_i128(i128);
            visit_u8(u8);
            visit_u16(u16);
            visit_u32(u32);
            visit_u64(u64);
            visit_u128(u128);
            visit_f32(f32);
            visit_f64(f64);
            visit_char(char);
            visit_str(&str);
            visit_borrowed_str(&'de str);
            visit_string(String);
            visit_bytes(&[u8]);
            visit_borrowed_bytes(&'de [u8]);
            visit_byte_buf(Vec<u8>);
        }

        #[inline]
        fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
            self.visitor.visit_none()
        }

        #[inline]
        fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
            self.visitor.visit_unit()
        }

        #[inline]
        fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
            let budget = self.budget.descend()?;
            self.visitor.visit_some(Limited { de, budget })
        }

        #[inline]
        fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
            let budget = self.budget.descend()?;
            self.visitor.visit_newtype_struct(Limited { de, budget })
        }

        #[inline]
        fn visit_seq<A: SeqAccess<'de>>(self, access: A) -> Result<V::Value, A::Error> {
            let budget = self.budget.descend()?;
            self.visitor.visit_seq(Seq { access, budget })
        }

        #[inline]
        fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<V::Value, A::Error> {
            let budget = self.budget.descend()?;
            self.visitor.visit_map(Map { access, budget })
        }

        #[inline]
        fn visit_enum<A: EnumAccess<'de>>(self, access: A) -> Result<V::Value, A::Error> {
            let budget = self.budget.descend()?;
            self.visitor.visit_enum(Enum { access, budget })
        }
    }

    impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, A> {
        type Error = A::Error;

        #[inline]
        fn next_element_seed<S: DeserializeSeed<'de>>(
            &mut self,
            seed: S,
        ) -> Result<Option<S::Value>, A::Error> {
            self.access.next_element_seed(Seed {
                seed,
                budget: self.budget,
            })
        }

        #[inline]
        fn size_hint(&self) -> Option<usize> {
            self.access.size_hint()
        }
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, A> {
        type Error = A::Error;

        #[inline]
        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            self.access.next_key_seed(Seed {
                seed,
                budget: self.budget,
            })
        }

        #[inline]
        fn next_value_seed<S: DeserializeSeed<'de>>(
            &mut self,
            seed: S,
        ) -> Result<S::Value, A::Error> {
            self.access.next_value_seed(Seed {
                seed,
                budget: self.budget,
            })
        }

        #[inline]
        fn next_entry_seed<K: DeserializeSeed<'de>, S: DeserializeSeed<'de>>(
            &mut self,
            kseed: K,
            vseed: S,
        ) -> Result<Option<(K::Value, S::Value)>, A::Error> {
            self.access.next_entry_seed(
                Seed {
                    seed: kseed,
                    budget: self.budget,
                },
                Seed {
                    seed: vseed,
                    budget: self.budget,
                },
            )
        }

        #[inline]
        fn size_hint(&self) -> Option<usize> {
            self.access.size_hint()
        }
    }

    impl<'a, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'a, A> {
        type Error = A::Error;
        type Variant = Variant<'a, A::Variant>;

        #[inline]
        fn variant_seed<S: DeserializeSeed<'de>>(
            self,
            seed: S,
        ) -> Result<(S::Value, Self::Variant), A::Error> {
            let budget = self.budget;
            let (v, access) = self.access.variant_seed(Seed { seed, budget })?;
            Ok((v, Variant { access, budget }))
        }
    }

    impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<'_, A> {
        type Error = A::Error;

        #[inline]
        fn unit_variant(self) -> Result<(), A::Error> {
            self.access.unit_variant()
        }

        #[inline]
        fn newtype_variant_seed<S: DeserializeSeed<'de>>(
            self,
            seed: S,
        ) -> Result<S::Value, A::Error> {
            self.access.newtype_variant_seed(Seed {
                seed,
                budget: self.budget,
            })
        }

        #[inline]
        fn tuple_variant<V: Visitor<'de>>(
            self,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            self.access.tuple_variant(
                len,
                Wrap {
                    visitor,
                    budget: self.budget,
                },
            )
        }

        #[inline]
        fn struct_variant<V: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            self.access.struct_variant(
                fields,
                Wrap {
                    visitor,
                    budget: self.budget,
                },
            )
        }
    }
}
