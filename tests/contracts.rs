//! Interface contracts across versions: two builds of one interface (two
//! modules declaring `#[remote(name = "Shipping")]`, each with its own
//! definition of the types) talk over TCP on 127.0.0.1. A change to the
//! structure of a type a method uses is an `InterfaceMismatch` naming the
//! method and the type, both ways, before the server decodes anything;
//! adding a method, or a type that no old method uses, stays compatible.

use std::time::Duration;

use farcall::rmi::Interface;
use farcall::{Node, Remote, RemoteError};

/// Declares module `$m` with the `Shipping` interface over the types
/// `$types` (which define `Parcel`): `send` echoes its parcel and counts
/// the calls that reached it, `ping` uses none of the types.
macro_rules! shipping {
    ($m:ident { $($types:item)* }) => {
        mod $m {
            #![allow(dead_code)]
            use std::sync::atomic::{AtomicUsize, Ordering};

            use farcall::RemoteError;
            use serde::{Deserialize, Serialize};

            $($types)*

            /// Calls of `send` that reached the implementation.
            pub(crate) static SENT: AtomicUsize = AtomicUsize::new(0);

            #[farcall::remote(name = "Shipping")]
            pub(crate) trait Shipping {
                async fn send(&self, parcel: Parcel) -> Result<Parcel, RemoteError>;
                async fn ping(&self) -> Result<u32, RemoteError>;
            }

            pub(crate) struct Depot;

            #[farcall::remote]
            impl Shipping for Depot {
                async fn send(&self, parcel: Parcel) -> Result<Parcel, RemoteError> {
                    SENT.fetch_add(1, Ordering::SeqCst);
                    Ok(parcel)
                }
                async fn ping(&self) -> Result<u32, RemoteError> {
                    Ok(7)
                }
            }

            pub(crate) fn sent() -> usize {
                SENT.load(Ordering::SeqCst)
            }
        }
    };
}

shipping!(reorder_v1 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) width: u32, pub(crate) height: u32 }
});
shipping!(reorder_v2 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) height: u32, pub(crate) width: u32 }
});

shipping!(rename_v1 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) width: u32, pub(crate) height: u32 }
});
shipping!(rename_v2 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) width: u32, pub(crate) depth: u32 }
});

shipping!(grow_v1 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) width: u32, pub(crate) height: u32 }
});
shipping!(grow_v2 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) width: u32, pub(crate) height: u32, pub(crate) weight: u32 }
});

shipping!(variant_added_v1 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) kind: Kind }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) enum Kind { Box, Letter }
});
shipping!(variant_added_v2 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) kind: Kind }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) enum Kind { Box, Letter, Crate }
});

shipping!(variant_moved_v1 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) kind: Kind }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) enum Kind { Box, Letter }
});
shipping!(variant_moved_v2 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) kind: Kind }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) enum Kind { Letter, Box }
});

shipping!(nested_v1 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) label: String, pub(crate) size: Option<Vec<Size>> }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Size { pub(crate) w: u32, pub(crate) h: u32 }
});
shipping!(nested_v2 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) label: String, pub(crate) size: Option<Vec<Size>> }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Size { pub(crate) w: u32, pub(crate) h: u64 }
});

/// A server of `$server::Shipping` on TCP, a client of `$client::Shipping`
/// calling it with `$parcel` (a `$client::Parcel`): `send` must be an
/// `InterfaceMismatch` naming `Shipping::send` and the type `$differs`,
/// the server's `send` must never run, and `ping` must still work.
macro_rules! assert_refused {
    ($client:ident -> $server:ident, $parcel:expr, $differs:literal) => {{
        let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        let _served: Remote<dyn $server::Shipping> = server.serve("shipping", $server::Depot);
        let client = Node::new();
        let stub = client
            .connect_service::<dyn $client::Shipping>(server.local_addr().unwrap(), "shipping")
            .await
            .unwrap()
            .with_deadline(Duration::from_secs(10));
        let before = $server::sent();
        #[allow(unused_imports)]
        use $client::*;
        match stub.send($parcel).await {
            Err(RemoteError::InterfaceMismatch(msg)) => {
                assert!(msg.starts_with("Shipping::send: "), "{msg}");
                assert!(
                    msg.contains(concat!("`", $differs, "`")),
                    "names {}: {msg}",
                    $differs
                );
            }
            other => panic!("expected InterfaceMismatch, got {other:?}"),
        }
        assert_eq!($server::sent(), before, "the server's send ran");
        assert_eq!(stub.ping().await.unwrap(), 7, "a method whose types agree");
        client.shutdown().await;
        server.shutdown().await;
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_fields_are_a_mismatch_both_ways() {
    assert_refused!(reorder_v1 -> reorder_v2, Parcel { width: 3, height: 4 }, "Parcel");
    assert_refused!(reorder_v2 -> reorder_v1, Parcel { height: 4, width: 3 }, "Parcel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_fields_are_a_mismatch_both_ways() {
    assert_refused!(rename_v1 -> rename_v2, Parcel { width: 3, height: 4 }, "Parcel");
    assert_refused!(rename_v2 -> rename_v1, Parcel { width: 3, depth: 4 }, "Parcel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_field_is_a_mismatch_both_ways() {
    assert_refused!(grow_v1 -> grow_v2, Parcel { width: 3, height: 4 }, "Parcel");
    assert_refused!(
        grow_v2 -> grow_v1,
        Parcel { width: 3, height: 4, weight: 5 },
        "Parcel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_variant_is_a_mismatch_both_ways() {
    assert_refused!(variant_added_v1 -> variant_added_v2, Parcel { kind: Kind::Box }, "Kind");
    assert_refused!(variant_added_v2 -> variant_added_v1, Parcel { kind: Kind::Box }, "Kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_variants_are_a_mismatch_both_ways() {
    assert_refused!(variant_moved_v1 -> variant_moved_v2, Parcel { kind: Kind::Letter }, "Kind");
    assert_refused!(variant_moved_v2 -> variant_moved_v1, Parcel { kind: Kind::Letter }, "Kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_nested_type_is_named() {
    let parcel = || nested_v1::Parcel {
        label: "a".into(),
        size: Some(vec![nested_v1::Size { w: 1, h: 2 }]),
    };
    assert_refused!(nested_v1 -> nested_v2, parcel(), "Size");
    assert_refused!(
        nested_v2 -> nested_v1,
        Parcel { label: "a".into(), size: None },
        "Size"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_structure_in_two_builds_agrees() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _served: Remote<dyn reorder_v1::Shipping> = server.serve("shipping", reorder_v1::Depot);
    let client = Node::new();
    let stub = client
        .connect_service::<dyn rename_v1::Shipping>(server.local_addr().unwrap(), "shipping")
        .await
        .unwrap();
    let p = rename_v1::Parcel {
        width: 3,
        height: 4,
    };
    assert_eq!(stub.send(p.clone()).await.unwrap(), p);
    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Compatible evolutions: a method added, with a type no old method uses
// ---------------------------------------------------------------------------

mod before {
    use farcall::RemoteError;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel {
        pub(crate) width: u32,
        pub(crate) height: u32,
    }

    #[farcall::remote(name = "Warehouse")]
    pub(crate) trait Warehouse {
        async fn store(&self, parcel: Parcel) -> Result<u32, RemoteError>;
    }

    pub(crate) struct Shed;

    #[farcall::remote]
    impl Warehouse for Shed {
        async fn store(&self, parcel: Parcel) -> Result<u32, RemoteError> {
            Ok(parcel.width * parcel.height)
        }
    }
}

mod after {
    use farcall::RemoteError;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel {
        pub(crate) width: u32,
        pub(crate) height: u32,
    }

    /// New in this version, used only by the new method.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) enum Scale {
        Grams,
        Ounces,
    }

    #[farcall::remote(name = "Warehouse")]
    pub(crate) trait Warehouse {
        async fn store(&self, parcel: Parcel) -> Result<u32, RemoteError>;
        async fn weigh(&self, parcel: Parcel, scale: Scale) -> Result<u64, RemoteError>;
    }

    pub(crate) struct Shed;

    #[farcall::remote]
    impl Warehouse for Shed {
        async fn store(&self, parcel: Parcel) -> Result<u32, RemoteError> {
            Ok(parcel.width * parcel.height)
        }
        async fn weigh(&self, parcel: Parcel, scale: Scale) -> Result<u64, RemoteError> {
            let grams = u64::from(parcel.width * parcel.height);
            Ok(match scale {
                Scale::Grams => grams,
                Scale::Ounces => grams / 28,
            })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_method_and_a_type_stays_compatible() {
    // An old client calls a new server.
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _served: Remote<dyn after::Warehouse> = server.serve("warehouse", after::Shed);
    let client = Node::new();
    let old = client
        .connect_service::<dyn before::Warehouse>(server.local_addr().unwrap(), "warehouse")
        .await
        .unwrap();
    let p = before::Parcel {
        width: 3,
        height: 4,
    };
    assert_eq!(old.store(p).await.unwrap(), 12);
    server.shutdown().await;

    // A new client calls an old server: the old method works, the new one
    // is not there.
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _served: Remote<dyn before::Warehouse> = server.serve("warehouse", before::Shed);
    let new = client
        .connect_service::<dyn after::Warehouse>(server.local_addr().unwrap(), "warehouse")
        .await
        .unwrap();
    let p = after::Parcel {
        width: 3,
        height: 4,
    };
    assert_eq!(new.store(p.clone()).await.unwrap(), 12);
    match new.weigh(p, after::Scale::Grams).await {
        Err(e @ RemoteError::NoSuchMethod(_)) => assert!(e.to_string().contains("weigh"), "{e}"),
        other => panic!("expected NoSuchMethod, got {other:?}"),
    }
    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// What the descriptor carries
// ---------------------------------------------------------------------------

#[test]
fn descriptors_carry_the_types_with_their_fields() {
    let d = <dyn nested_v1::Shipping as Interface>::descriptor();
    let send = d.methods.iter().find(|m| m.name == "send").unwrap();
    let types: Vec<String> = send.types.iter().map(ToString::to_string).collect();
    assert_eq!(
        types,
        [
            "struct Parcel { label: String, size: Option<Vec<Size>> }",
            "struct Size { w: u32, h: u32 }",
        ]
    );
    let ping = d.methods.iter().find(|m| m.name == "ping").unwrap();
    assert!(ping.types.is_empty());
    // The structure is in the signature: the same method over another
    // `Size` has another one.
    let other = <dyn nested_v2::Shipping as Interface>::descriptor();
    let send2 = other.methods.iter().find(|m| m.name == "send").unwrap();
    assert_ne!(send.signature, send2.signature);
    assert_eq!(send.id, send2.id);
}

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

    #[farcall::remote]
    pub(crate) trait Described {
        async fn plant(&self, tree: Tree) -> Result<u32, RemoteError>;
        async fn person(&self, who: Renamed, event: Event) -> Result<Page<Tree>, RemoteError>;
    }
}

#[test]
fn schemas_follow_serde_attributes_and_recursion() {
    let d = <dyn described::Described as Interface>::descriptor();
    let method = |name: &str| {
        let m = d.methods.iter().find(|m| m.name == name).unwrap();
        m.types.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        method("plant"),
        ["struct Tree { label: String, children: Vec<Tree> }"]
    );
    assert_eq!(
        method("person"),
        [
            "struct Renamed { firstName: String, zip: u32, note?: Option<String> }",
            "#[serde(tag = \"type\")] enum Event { opened { at: u64 }, closed }",
            "struct Tree { label: String, children: Vec<Tree> }",
            "struct Page<Tree> { items: Vec<Tree>, by_name: Map<String, f64> }",
        ]
    );
}
