//! [`Schema`] for the standard types and for farcall's own.
//!
//! The text names the wire shape, not the Rust type: every sequence
//! (`Vec`, `VecDeque`, sets, slices) is `Vec<T>`, every map `Map<K, V>`,
//! `usize` is `u64`, and the pointers serde sees through (`Box`, `Arc`,
//! `Rc`, `&T`, `Cow`, the locks and cells) are the type they point to,
//! as are the wrappers serde sees through (`Wrapping`, `Reverse`). So a
//! change that keeps the encoding (a `HashMap` that becomes a `BTreeMap`)
//! keeps the fingerprint.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::{
    NonZeroI8, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI128, NonZeroIsize, NonZeroU8,
    NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU128, NonZeroUsize, Saturating, Wrapping,
};
use std::ops::{Bound, Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use super::{Schema, Types};
use crate::id::{NodeId, ObjectId};
use crate::rmi::{AnyRemote, Interface, Remote, RemoteError, Stream};

/// Types written by a fixed name.
macro_rules! named {
    ($($ty:ty => $text:literal),* $(,)?) => {
        $(impl Schema for $ty {
            fn describe(_: &mut Types) -> String {
                $text.to_owned()
            }
        })*
    };
}

named! {
    bool => "bool", char => "char",
    u8 => "u8", u16 => "u16", u32 => "u32", u64 => "u64", u128 => "u128", usize => "u64",
    i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", i128 => "i128", isize => "i64",
    f32 => "f32", f64 => "f64",
    () => "()",
    str => "String", String => "String",
    Path => "PathBuf", PathBuf => "PathBuf",
    Duration => "Duration", SystemTime => "SystemTime",
    IpAddr => "IpAddr", Ipv4Addr => "Ipv4Addr", Ipv6Addr => "Ipv6Addr", SocketAddr => "SocketAddr",
    bytes::Bytes => "Bytes", bytes::BytesMut => "Bytes",
    RemoteError => "RemoteError", AnyRemote => "AnyRemote",
    NodeId => "NodeId", ObjectId => "ObjectId",
    NonZeroU8 => "NonZeroU8", NonZeroU16 => "NonZeroU16", NonZeroU32 => "NonZeroU32",
    NonZeroU64 => "NonZeroU64", NonZeroU128 => "NonZeroU128", NonZeroUsize => "NonZeroU64",
    NonZeroI8 => "NonZeroI8", NonZeroI16 => "NonZeroI16", NonZeroI32 => "NonZeroI32",
    NonZeroI64 => "NonZeroI64", NonZeroI128 => "NonZeroI128", NonZeroIsize => "NonZeroI64",
}

/// Pointers serde sees through: the type they point to.
macro_rules! transparent {
    ($($ty:ty),* $(,)?) => {
        $(impl<T: Schema + ?Sized> Schema for $ty {
            fn describe(types: &mut Types) -> String {
                T::describe(types)
            }
        })*
    };
}

transparent!(
    &T,
    &mut T,
    Box<T>,
    Arc<T>,
    Rc<T>,
    Mutex<T>,
    RwLock<T>,
    RefCell<T>
);

/// Wrappers serde encodes as their content.
macro_rules! wrapper {
    ($($ty:ty),* $(,)?) => {
        $(impl<T: Schema> Schema for $ty {
            fn describe(types: &mut Types) -> String {
                T::describe(types)
            }
        })*
    };
}

wrapper!(Wrapping<T>, Saturating<T>, Reverse<T>, Cell<T>);

impl<T: Schema> Schema for Range<T> {
    fn describe(types: &mut Types) -> String {
        format!("Range<{}>", T::describe(types))
    }
}

impl<T: Schema> Schema for RangeInclusive<T> {
    fn describe(types: &mut Types) -> String {
        format!("RangeInclusive<{}>", T::describe(types))
    }
}

impl<T: Schema> Schema for Bound<T> {
    fn describe(types: &mut Types) -> String {
        format!("Bound<{}>", T::describe(types))
    }
}

impl<T: Schema + ToOwned + ?Sized> Schema for Cow<'_, T> {
    fn describe(types: &mut Types) -> String {
        T::describe(types)
    }
}

/// Sequences: `Vec<T>`.
macro_rules! sequence {
    ($($ty:ty),* $(,)?) => {
        $(impl<T: Schema> Schema for $ty {
            fn describe(types: &mut Types) -> String {
                format!("Vec<{}>", T::describe(types))
            }
        })*
    };
}

sequence!(
    [T],
    Vec<T>,
    VecDeque<T>,
    LinkedList<T>,
    BTreeSet<T>,
    BinaryHeap<T>
);

impl<T: Schema, S> Schema for HashSet<T, S> {
    fn describe(types: &mut Types) -> String {
        format!("Vec<{}>", T::describe(types))
    }
}

impl<K: Schema, V: Schema, S> Schema for HashMap<K, V, S> {
    fn describe(types: &mut Types) -> String {
        let (k, v) = (K::describe(types), V::describe(types));
        format!("Map<{k}, {v}>")
    }
}

impl<K: Schema, V: Schema> Schema for BTreeMap<K, V> {
    fn describe(types: &mut Types) -> String {
        let (k, v) = (K::describe(types), V::describe(types));
        format!("Map<{k}, {v}>")
    }
}

impl<T: Schema> Schema for Option<T> {
    fn describe(types: &mut Types) -> String {
        format!("Option<{}>", T::describe(types))
    }
}

impl<T: Schema, E: Schema> Schema for Result<T, E> {
    fn describe(types: &mut Types) -> String {
        let (t, e) = (T::describe(types), E::describe(types));
        crate::private::result_text(t, e)
    }
}

impl<T: Schema, const N: usize> Schema for [T; N] {
    fn describe(types: &mut Types) -> String {
        format!("[{}; {N}]", T::describe(types))
    }
}

impl<T: ?Sized> Schema for std::marker::PhantomData<T> {
    fn describe(_: &mut Types) -> String {
        "PhantomData".to_owned()
    }
}

/// Tuples: `(A, B)`, and `(A,)` for one.
macro_rules! tuple {
    ($($name:ident)+) => {
        impl<$($name: Schema),+> Schema for ($($name,)+) {
            fn describe(types: &mut Types) -> String {
                let parts: Vec<String> = vec![$($name::describe(types)),+];
                if parts.len() == 1 {
                    format!("({},)", parts[0])
                } else {
                    format!("({})", parts.join(", "))
                }
            }
        }
    };
}

tuple!(A);
tuple!(A B);
tuple!(A B C);
tuple!(A B C D);
tuple!(A B C D E);
tuple!(A B C D E F);
tuple!(A B C D E F G);
tuple!(A B C D E F G H);
tuple!(A B C D E F G H I);
tuple!(A B C D E F G H I J);
tuple!(A B C D E F G H I J K);
tuple!(A B C D E F G H I J K L);

/// A reference travels as its node, object and interface id; the
/// interface's own methods are checked call by call, so its name is all
/// the schema says.
impl<I: ?Sized + Interface> Schema for Remote<I> {
    fn describe(_: &mut Types) -> String {
        format!("Remote<{}>", I::descriptor().name)
    }
}

impl<T: Schema> Schema for Stream<T> {
    fn describe(types: &mut Types) -> String {
        format!("Stream<{}>", T::describe(types))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Fields, Shape, Signature};

    struct Tree {
        _children: Vec<Tree>,
    }

    impl Schema for Tree {
        fn describe(types: &mut Types) -> String {
            types.define::<Self>("Tree".to_owned(), Vec::new(), |t| {
                Shape::Struct(Fields::named([("children", t.of::<Vec<Tree>>())]))
            })
        }
    }

    #[test]
    fn std_types_name_their_wire_shape() {
        let mut t = Types::new();
        assert_eq!(t.of::<HashMap<String, Vec<u8>>>(), "Map<String, Vec<u8>>");
        assert_eq!(t.of::<BTreeMap<String, Vec<u8>>>(), "Map<String, Vec<u8>>");
        assert_eq!(t.of::<Box<[usize]>>(), "Vec<u64>");
        assert_eq!(t.of::<(u8,)>(), "(u8,)");
        assert_eq!(t.of::<(u8, Option<&str>)>(), "(u8, Option<String>)");
        assert_eq!(t.of::<[u16; 4]>(), "[u16; 4]");
        assert_eq!(
            t.of::<Result<Stream<bytes::Bytes>, RemoteError>>(),
            "Result<Stream<Bytes>, RemoteError>"
        );
        assert!(t.definitions().is_empty());
    }

    #[test]
    fn a_recursive_type_ends_at_its_back_reference() {
        let sig = Signature::build(|t| (vec![t.of::<Tree>()], t.of::<Arc<Tree>>()));
        assert_eq!(sig.to_string(), "(Tree) -> Tree");
        assert_eq!(sig.types.len(), 1);
        assert_eq!(
            sig.types[0].to_string(),
            "struct Tree { children: Vec<Tree> }"
        );
    }
}
