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

// A third build of `reorder_v1`'s structure, served only by the test that
// two builds agree: the counters of the others stay theirs.
shipping!(same_v1 {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) width: u32, pub(crate) height: u32 }
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
    let _served: Remote<dyn same_v1::Shipping> = server.serve("shipping", same_v1::Depot);
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
// Refused before anything is decoded
// ---------------------------------------------------------------------------

shipping!(counted {
    /// `reorder_v2`'s `Parcel`, with a `Deserialize` that counts.
    #[derive(Debug, Clone, PartialEq, Serialize, farcall::Schema)]
    pub(crate) struct Parcel { pub(crate) height: u32, pub(crate) width: u32 }

    /// `Parcel`s decoded in this process.
    pub(crate) static DECODED: AtomicUsize = AtomicUsize::new(0);

    impl<'de> Deserialize<'de> for Parcel {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Parcel, D::Error> {
            #[derive(Deserialize)]
            struct Raw { height: u32, width: u32 }
            DECODED.fetch_add(1, Ordering::SeqCst);
            let Raw { height, width } = Raw::deserialize(d)?;
            Ok(Parcel { height, width })
        }
    }

    pub(crate) fn decoded() -> usize {
        DECODED.load(Ordering::SeqCst)
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatch_is_refused_before_any_argument_is_decoded() {
    // The counter counts: a call whose structures agree decodes.
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _served: Remote<dyn counted::Shipping> = server.serve("shipping", counted::Depot);
    let client = Node::new();
    let same = client
        .connect_service::<dyn counted::Shipping>(server.local_addr().unwrap(), "shipping")
        .await
        .unwrap();
    let before = counted::decoded();
    let p = counted::Parcel {
        height: 4,
        width: 3,
    };
    assert_eq!(same.send(p.clone()).await.unwrap(), p);
    assert!(counted::decoded() > before, "the counter counts");
    client.shutdown().await;
    server.shutdown().await;

    // One whose structures differ does not.
    let before = counted::decoded();
    assert_refused!(reorder_v1 -> counted, Parcel { width: 3, height: 4 }, "Parcel");
    assert_eq!(counted::decoded(), before, "a Parcel was decoded");
}

// ---------------------------------------------------------------------------
// Generic interfaces: each instantiation's structure
// ---------------------------------------------------------------------------

mod generic {
    use std::sync::Mutex;

    use farcall::RemoteError;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    #[farcall::remote(name = "Shelf")]
    pub(crate) trait Shelf<V> {
        async fn put(&self, item: V) -> Result<u32, RemoteError>;
    }

    pub(crate) struct Rack<V>(pub(crate) Mutex<Vec<V>>);

    impl<V> Rack<V> {
        pub(crate) fn new() -> Rack<V> {
            Rack(Mutex::new(Vec::new()))
        }
    }

    #[farcall::remote]
    impl<V> Shelf<V> for Rack<V>
    where
        V: Serialize + DeserializeOwned + farcall::Schema + Send + Sync + 'static,
    {
        async fn put(&self, item: V) -> Result<u32, RemoteError> {
            let mut items = self.0.lock().unwrap();
            items.push(item);
            Ok(items.len() as u32)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_interface_compares_its_instantiations_structure() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let _served: Remote<dyn generic::Shelf<reorder_v2::Parcel>> =
        server.serve("shelf", generic::Rack::<reorder_v2::Parcel>::new());
    let client = Node::new();

    let other = client
        .connect_service::<dyn generic::Shelf<reorder_v1::Parcel>>(&addr, "shelf")
        .await
        .unwrap();
    let p = reorder_v1::Parcel {
        width: 3,
        height: 4,
    };
    match other.put(p).await {
        Err(RemoteError::InterfaceMismatch(msg)) => {
            assert!(msg.starts_with("Shelf::put: "), "{msg}");
            assert!(msg.contains("`Parcel`"), "{msg}");
        }
        other => panic!("expected InterfaceMismatch, got {other:?}"),
    }

    // The same structure from another module agrees.
    let same = client
        .connect_service::<dyn generic::Shelf<counted::Parcel>>(&addr, "shelf")
        .await
        .unwrap();
    let p = counted::Parcel {
        height: 4,
        width: 3,
    };
    assert_eq!(same.put(p).await.unwrap(), 1);
    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Error types are part of the structure
// ---------------------------------------------------------------------------

/// Declares module `$m` with the `Billing` interface over the error type
/// `BillError`, whose variants are `$variants` and `Remote`.
macro_rules! billing {
    ($m:ident { $($variants:ident),* }) => {
        mod $m {
            #![allow(dead_code)]
            use farcall::RemoteError;
            use serde::{Deserialize, Serialize};

            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
            pub(crate) enum BillError {
                $($variants,)*
                Remote(RemoteError),
            }

            impl From<RemoteError> for BillError {
                fn from(e: RemoteError) -> BillError {
                    BillError::Remote(e)
                }
            }

            #[farcall::remote(name = "Billing")]
            pub(crate) trait Billing {
                async fn charge(&self, cents: u64) -> Result<u64, BillError>;
            }

            pub(crate) struct Till;

            #[farcall::remote]
            impl Billing for Till {
                async fn charge(&self, cents: u64) -> Result<u64, BillError> {
                    Ok(cents)
                }
            }
        }
    };
}

billing!(billing_v1 { Declined });
billing!(billing_v2 { Declined, Expired });

/// A client of `$client::Billing` calling a server of `$server::Billing`.
macro_rules! assert_bill_refused {
    ($client:ident -> $server:ident) => {{
        let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        let _served: Remote<dyn $server::Billing> = server.serve("billing", $server::Till);
        let client = Node::new();
        let stub = client
            .connect_service::<dyn $client::Billing>(server.local_addr().unwrap(), "billing")
            .await
            .unwrap();
        match stub.charge(5).await {
            Err($client::BillError::Remote(RemoteError::InterfaceMismatch(msg))) => {
                assert!(msg.starts_with("Billing::charge: "), "{msg}");
                assert!(msg.contains("`BillError`"), "{msg}");
            }
            other => panic!("expected InterfaceMismatch, got {other:?}"),
        }
        client.shutdown().await;
        server.shutdown().await;
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_error_type_is_a_mismatch_both_ways() {
    assert_bill_refused!(billing_v1 -> billing_v2);
    assert_bill_refused!(billing_v2 -> billing_v1);
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
