//! What `#[derive(farcall::Schema)]` describes, as the interface
//! descriptor carries it for `describe`: serde's attributes applied,
//! recursive types ended at their back-reference, generic types
//! instantiated, and the signature word changing exactly when the
//! structure does.

use farcall::rmi::{Interface, InterfaceDescriptor};
use farcall::schema::{Fields, Schema, Shape, Signature, Types};

mod described {
    #![allow(dead_code)]
    use std::collections::BTreeMap;

    use farcall::RemoteError;
    use serde::{Deserialize, Serialize};

    /// Recursive: the definition ends at the back-reference.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Tree {
        pub(crate) label: String,
        pub(crate) children: Vec<Tree>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct Renamed {
        pub(crate) first_name: String,
        #[serde(rename = "zip")]
        pub(crate) postal_code: u32,
        #[serde(skip)]
        pub(crate) cache: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub(crate) note: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub(crate) enum Event {
        Opened { at: u64 },
        Closed,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    #[serde(transparent)]
    pub(crate) struct Meters(pub(crate) f64);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Page<T> {
        pub(crate) items: Vec<T>,
        pub(crate) by_name: BTreeMap<String, Meters>,
    }

    /// A skipped variant keeps its place; a field encoded `with` a
    /// module is described as what the module writes.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) enum Status {
        Up,
        #[serde(skip)]
        Internal,
        #[serde(rename = "down")]
        Down {
            #[serde(with = "as_text")]
            #[schema(as = "String")]
            since: u64,
        },
    }

    /// A `u64` written as its decimal text.
    mod as_text {
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&v.to_string())
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
            let text = String::deserialize(d)?;
            text.parse().map_err(serde::de::Error::custom)
        }
    }

    #[farcall::remote]
    pub(crate) trait Described {
        async fn plant(&self, tree: Tree) -> Result<u32, RemoteError>;
        async fn person(&self, who: Renamed, event: Event) -> Result<Page<Tree>, RemoteError>;
        async fn status(&self) -> Result<Status, RemoteError>;
        async fn pages(&self) -> Result<(Page<u8>, Page<String>), RemoteError>;
    }
}

fn method_types(d: &InterfaceDescriptor, name: &str) -> Vec<String> {
    let m = d.methods.iter().find(|m| m.name == name).unwrap();
    m.types.iter().map(ToString::to_string).collect()
}

#[test]
fn schemas_follow_serde_attributes_and_recursion() {
    let d = <dyn described::Described as Interface>::descriptor();
    assert_eq!(
        method_types(d, "plant"),
        ["struct Tree { label: String, children: Vec<Tree> }"]
    );
    assert_eq!(
        method_types(d, "person"),
        [
            "struct Renamed { firstName: String, zip: u32, note?: Option<String> }",
            "#[serde(tag = \"type\")] enum Event { opened { at: u64 }, closed }",
            "struct Tree { label: String, children: Vec<Tree> }",
            "struct Page<Tree> { items: Vec<Tree>, by_name: Map<String, f64> }",
        ]
    );
    assert_eq!(
        method_types(d, "status"),
        ["enum Status { Up, #[serde(skip)] Internal, down { since: String } }"]
    );
}

#[test]
fn each_instantiation_of_a_generic_type_is_its_own_definition() {
    let d = <dyn described::Described as Interface>::descriptor();
    assert_eq!(
        method_types(d, "pages"),
        [
            "struct Page<u8> { items: Vec<u8>, by_name: Map<String, f64> }",
            "struct Page<String> { items: Vec<String>, by_name: Map<String, f64> }",
        ]
    );
}

#[test]
fn the_interface_lists_each_type_once() {
    let d = <dyn described::Described as Interface>::descriptor();
    let all: Vec<String> = d.types().iter().map(ToString::to_string).collect();
    let trees = all.iter().filter(|t| t.starts_with("struct Tree ")).count();
    assert_eq!(trees, 1, "{all:#?}");
    assert_eq!(all.len(), 7, "{all:#?}");
}

/// A hand-written schema, for a type whose `Serialize` is written by hand.
struct Celsius;

impl Schema for Celsius {
    fn describe(types: &mut Types) -> String {
        types.define::<Self>("Celsius".to_owned(), Vec::new(), |t| {
            Shape::Struct(Fields::Unnamed(vec![t.of::<f32>()]))
        })
    }
}

#[test]
fn the_fingerprint_hashes_the_canonical_text() {
    let a = Signature::build(|t| (vec![t.of::<Celsius>()], t.of::<Option<u8>>()));
    assert_eq!(a.canonical(), "(Celsius) -> Option<u8>;struct Celsius(f32)");
    let b = Signature::build(|t| (vec![t.of::<Celsius>()], t.of::<Option<u16>>()));
    assert_ne!(a.fingerprint(), b.fingerprint());
    let again = Signature::build(|t| (vec![t.of::<Celsius>()], t.of::<Option<u8>>()));
    assert_eq!(a.fingerprint(), again.fingerprint());
}

mod pinned {
    use farcall::RemoteError;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel {
        pub(crate) width: u32,
        pub(crate) height: u32,
    }

    #[farcall::remote]
    pub(crate) trait Shipping {
        async fn send(&self, parcel: Parcel) -> Result<u64, RemoteError>;
    }
}

/// The example of `docs/PROTOCOL.md` (8.3), byte for byte: another
/// implementation computes the same word from the same text.
#[test]
fn the_signature_is_pinned_to_the_protocol() {
    let d = <dyn pinned::Shipping as Interface>::descriptor();
    let send = &d.methods[0];
    let sig = Signature::build(|t| {
        (
            vec![t.of::<pinned::Parcel>()],
            t.of::<Result<u64, farcall::RemoteError>>(),
        )
    });
    assert_eq!(
        sig.canonical(),
        "(Parcel) -> Result<u64, RemoteError>;struct Parcel { width: u32, height: u32 }"
    );
    assert_eq!(send.signature, 0x668D_535F);
    assert_eq!(sig.fingerprint(), 0x668D_535F);
}
