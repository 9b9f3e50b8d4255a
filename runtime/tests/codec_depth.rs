//! The nesting limit of `codec::decode`: nesting bombs are refused with
//! `TooDeep` and never overflow the stack, and everything within the limit
//! decodes exactly as plain postcard decodes it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use farcall_runtime::codec::{self, DecodeError, MAX_DEPTH};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Recursive types
// ---------------------------------------------------------------------------

/// One level per step: the variant.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Chain {
    End,
    Link(Box<Chain>),
}

/// Two levels per step: the variant and the `Vec`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Tree {
    Leaf,
    Node(Vec<Tree>),
}

/// Two levels per step: the newtype struct and the `Some`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Nest(Option<Box<Nest>>);

/// Two levels per step: the newtype struct and the `Vec`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Lists(Vec<Lists>);

/// Two levels per step: the newtype struct and the map.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Maps(BTreeMap<u8, Maps>);

fn chain(links: usize) -> Chain {
    (0..links).fold(Chain::End, |c, _| Chain::Link(Box::new(c)))
}

fn tree(nodes: usize) -> Tree {
    (0..nodes).fold(Tree::Leaf, |t, _| Tree::Node(vec![Tree::Leaf, t]))
}

fn nest(somes: usize) -> Nest {
    (0..somes).fold(Nest(None), |n, _| Nest(Some(Box::new(n))))
}

fn lists(vecs: usize) -> Lists {
    (0..vecs).fold(Lists(Vec::new()), |l, _| Lists(vec![Lists(Vec::new()), l]))
}

fn maps(steps: usize) -> Maps {
    (0..steps).fold(Maps(BTreeMap::new()), |m, i| {
        Maps(BTreeMap::from([(i as u8, m), (255, Maps(BTreeMap::new()))]))
    })
}

/// Runs `f` on a thread with a 256 KiB stack: were the recursion not
/// bounded, a nesting bomb would overflow it and abort the test binary.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the decoding thread panicked")
}

/// Encodes `v`, decodes it, and checks it came back equal.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = codec::encode(v).unwrap();
    assert_eq!(&codec::decode::<T>(&bytes).unwrap(), v);
}

fn too_deep<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) {
    match codec::decode::<T>(bytes) {
        Err(DecodeError::TooDeep { limit }) => assert_eq!(limit, MAX_DEPTH),
        other => panic!("expected TooDeep, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The limit, level by level
// ---------------------------------------------------------------------------

#[test]
fn the_limit_is_exact_for_every_recursive_shape() {
    on_small_stack(|| {
        // Chain: n links are n + 1 variants.
        round_trip(&chain(MAX_DEPTH - 1));
        too_deep::<Chain>(&codec::encode(&chain(MAX_DEPTH)).unwrap());

        // Tree: n nodes are 2n + 1 levels.
        round_trip(&tree(63));
        too_deep::<Tree>(&codec::encode(&tree(64)).unwrap());

        // Nest: n somes are 2n + 1 levels.
        round_trip(&nest(63));
        too_deep::<Nest>(&codec::encode(&nest(64)).unwrap());

        // Lists: n vecs inside are 2n + 2 levels.
        round_trip(&lists(63));
        too_deep::<Lists>(&codec::encode(&lists(64)).unwrap());

        // Maps: n maps inside are 2n + 2 levels.
        round_trip(&maps(63));
        too_deep::<Maps>(&codec::encode(&maps(64)).unwrap());
    });
}

#[test]
fn a_127_deep_value_decodes() {
    on_small_stack(|| {
        // 127 levels of nesting: 126 links and the end.
        round_trip(&chain(126));
        // The same depth as a tuple of it: one level more, still in.
        let v = (7u8, chain(126));
        round_trip(&v);
    });
}

#[test]
fn the_error_says_what_went_wrong() {
    let e = codec::decode::<Chain>(&codec::encode(&chain(1000)).unwrap()).unwrap_err();
    assert_eq!(e, DecodeError::TooDeep { limit: 128 });
    assert!(e.to_string().contains("nesting deeper than 128"), "{e}");
}

#[test]
fn decode_with_limit_counts_levels() {
    let bytes = codec::encode(&chain(9)).unwrap();
    assert_eq!(codec::decode_with_limit::<Chain>(&bytes, 10), Ok(chain(9)));
    assert_eq!(
        codec::decode_with_limit::<Chain>(&bytes, 9),
        Err(DecodeError::TooDeep { limit: 9 })
    );
    // Scalars are no nesting at all.
    let bytes = codec::encode(&42u64).unwrap();
    assert_eq!(codec::decode_with_limit::<u64>(&bytes, 0), Ok(42));
    let bytes = codec::encode(&(42u64,)).unwrap();
    assert_eq!(
        codec::decode_with_limit::<(u64,)>(&bytes, 0),
        Err(DecodeError::TooDeep { limit: 0 })
    );
    assert_eq!(codec::decode_with_limit::<(u64,)>(&bytes, 1), Ok((42,)));
}

// ---------------------------------------------------------------------------
// Nesting bombs
// ---------------------------------------------------------------------------

/// A million `0x01` bytes: `Some` after `Some`, variant 1 after variant 1,
/// a one-element list after a one-element list.
fn bomb() -> Vec<u8> {
    vec![0x01; 1 << 20]
}

#[test]
fn a_megabyte_of_somes_is_refused_without_overflow() {
    on_small_stack(|| too_deep::<Nest>(&bomb()));
    on_small_stack(|| too_deep::<Option<Box<Nest>>>(&bomb()));
}

#[test]
fn a_megabyte_of_variants_is_refused_without_overflow() {
    on_small_stack(|| too_deep::<Chain>(&bomb()));
}

#[test]
fn a_megabyte_of_lists_is_refused_without_overflow() {
    on_small_stack(|| too_deep::<Tree>(&bomb()));
    on_small_stack(|| too_deep::<Lists>(&bomb()));
    on_small_stack(|| too_deep::<Maps>(&bomb()));
}

#[test]
fn bombs_in_fields_elements_and_map_values_are_refused() {
    on_small_stack(|| {
        // A field after a scalar.
        let mut b = vec![0x05];
        b.extend(bomb());
        too_deep::<(u8, Nest)>(&b);
        // The third element of a list.
        let mut b = vec![0x03, 0x00, 0x00];
        b.extend(bomb());
        too_deep::<Vec<Chain>>(&b);
        // A map value.
        let mut b = vec![0x01, 0x07];
        b.extend(bomb());
        too_deep::<HashMap<u8, Tree>>(&b);
        // A struct variant's field.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        enum Outer {
            A,
            B { n: u32, t: Tree },
        }
        let mut b = vec![0x01, 0x02];
        b.extend(bomb());
        too_deep::<Outer>(&b);
    });
}

/// A type whose decoding recurses without reading a byte: without a
/// limit, even an empty payload would overflow the stack.
#[test]
fn recursion_that_reads_nothing_is_bounded_too() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Forever(Box<Forever>);
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Pair(Box<Pair>, Box<Pair>);
    on_small_stack(|| {
        too_deep::<Forever>(&[]);
        too_deep::<Pair>(&[]);
    });
}

// ---------------------------------------------------------------------------
// Ordinary payloads
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f32),
    Rect(u32, u32),
    Poly {
        name: String,
        corners: Vec<(i64, i64)>,
    },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    unit: (),
    unit_struct: Unit,
    b: bool,
    small: (i8, i16, i32, i64, i128),
    big: (u8, u16, u32, u64, u128),
    c: char,
    s: String,
    bytes: Bytes,
    raw: Vec<u8>,
    array: [u16; 4],
    newtype: Meters,
    shapes: Vec<Shape>,
    tree: BTreeMap<String, Vec<Option<u32>>>,
    hash: HashMap<u64, Shape>,
    nothing: Option<Box<Everything>>,
    // These decode differently for non-human-readable formats, which the
    // adapter must report as postcard does.
    addr: SocketAddr,
    ip: IpAddr,
    elapsed: Duration,
}

fn everything() -> Everything {
    Everything {
        unit: (),
        unit_struct: Unit,
        b: true,
        small: (-1, -300, -70_000, i64::MIN, i128::MIN),
        big: (255, 65_535, u32::MAX, u64::MAX, u128::MAX),
        c: 'ß',
        s: "hello, world".to_owned(),
        bytes: Bytes::from_static(&[0, 1, 2, 255]),
        raw: vec![9; 300],
        array: [1, 2, 3, 4],
        newtype: Meters(1.5),
        shapes: vec![
            Shape::Empty,
            Shape::Circle(2.5),
            Shape::Rect(3, 4),
            Shape::Poly {
                name: "tri".to_owned(),
                corners: vec![(0, 0), (1, 0), (0, 1)],
            },
        ],
        tree: BTreeMap::from([
            ("a".to_owned(), vec![Some(1), None]),
            ("b".to_owned(), vec![]),
        ]),
        hash: HashMap::from([(7, Shape::Rect(1, 2)), (8, Shape::Empty)]),
        nothing: None,
        addr: SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 4000),
        ip: "10.1.2.3".parse().unwrap(),
        elapsed: Duration::from_millis(1500),
    }
}

#[test]
fn ordinary_values_decode() {
    round_trip(&everything());
    let mut outer = everything();
    outer.nothing = Some(Box::new(everything()));
    round_trip(&outer);
    round_trip(&Bytes::from(vec![7u8; 100_000]));
    round_trip(&());
    round_trip(&(1u8, "two".to_owned(), 3.0f64));
    // Everything decodes just as plain postcard decodes it.
    let bytes = codec::encode(&outer).unwrap();
    assert_eq!(
        codec::decode::<Everything>(&bytes).unwrap(),
        postcard::from_bytes::<Everything>(&bytes).unwrap()
    );
}

#[test]
fn trailing_and_missing_bytes_are_refused() {
    let mut b = codec::encode(&everything()).unwrap().to_vec();
    b.push(0);
    assert_eq!(
        codec::decode::<Everything>(&b).unwrap_err(),
        DecodeError::TrailingBytes
    );
    b.truncate(b.len() - 2);
    assert_eq!(
        codec::decode::<Everything>(&b).unwrap_err(),
        DecodeError::Postcard(postcard::Error::DeserializeUnexpectedEnd)
    );
    // postcard's own errors come through unchanged.
    assert_eq!(
        codec::decode::<bool>(&[2]).unwrap_err(),
        DecodeError::Postcard(postcard::Error::DeserializeBadBool)
    );
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wrapped(Box<V>);

/// A value of many shapes, nested arbitrarily.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum V {
    Unit,
    Bool(bool),
    Int(i64),
    Big(u128),
    Str(String),
    Opt(Option<Box<V>>),
    List(Vec<V>),
    Map(BTreeMap<u8, V>),
    Pair(Box<(V, V)>),
    Newtype(Wrapped),
    Record { tag: u8, inner: Box<V> },
}

/// The levels of nesting `codec` counts in `v`.
fn depth(v: &V) -> usize {
    1 + match v {
        V::Unit | V::Bool(_) | V::Int(_) | V::Big(_) | V::Str(_) | V::Opt(None) => 0,
        V::Opt(Some(v)) | V::Newtype(Wrapped(v)) | V::Record { inner: v, .. } => 1 + depth(v),
        V::List(vs) => 1 + vs.iter().map(depth).max().unwrap_or(0),
        V::Map(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        V::Pair(p) => 1 + depth(&p.0).max(depth(&p.1)),
    }
}

fn value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        Just(V::Unit),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::Int),
        any::<u128>().prop_map(V::Big),
        ".{0,8}".prop_map(V::Str),
        Just(V::Opt(None)),
    ];
    leaf.prop_recursive(80, 256, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|v| V::Opt(Some(Box::new(v)))),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(V::List),
            proptest::collection::btree_map(any::<u8>(), inner.clone(), 0..4).prop_map(V::Map),
            (inner.clone(), inner.clone()).prop_map(|p| V::Pair(Box::new(p))),
            inner.clone().prop_map(|v| V::Newtype(Wrapped(Box::new(v)))),
            (any::<u8>(), inner).prop_map(|(tag, v)| V::Record {
                tag,
                inner: Box::new(v)
            }),
        ]
    })
}

/// Plain postcard with `codec`'s rule for trailing bytes.
fn plain(b: &[u8]) -> Result<V, DecodeError> {
    match postcard::take_from_bytes::<V>(b) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(DecodeError::TrailingBytes),
        Err(e) => Err(DecodeError::Postcard(e)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Within the limit, decoding through the adapter is plain postcard.
    #[test]
    fn decodes_as_postcard_does(v in value()) {
        prop_assume!(depth(&v) <= MAX_DEPTH);
        let bytes = codec::encode(&v).unwrap();
        let ours = codec::decode::<V>(&bytes);
        prop_assert_eq!(&ours, &plain(&bytes));
        prop_assert_eq!(ours, Ok(v));
    }

    /// A value decodes with a limit of exactly its depth and not one less.
    #[test]
    fn the_limit_is_the_depth(v in value()) {
        let d = depth(&v);
        let bytes = codec::encode(&v).unwrap();
        prop_assert_eq!(codec::decode_with_limit::<V>(&bytes, d), Ok(v));
        prop_assert_eq!(
            codec::decode_with_limit::<V>(&bytes, d - 1),
            Err(DecodeError::TooDeep { limit: d - 1 })
        );
    }

    /// On arbitrary bytes too short to nest past the limit (`V` opens at
    /// most two levels per byte), the adapter gives postcard's answer,
    /// errors included.
    #[test]
    fn arbitrary_bytes_decode_as_postcard_does(
        bytes in proptest::collection::vec(
            prop_oneof![0u8..12, any::<u8>()],
            0..60,
        )
    ) {
        prop_assert_eq!(codec::decode::<V>(&bytes), plain(&bytes));
    }

    /// Mutated encodings: the same, save that what nests past the limit
    /// is refused.
    #[test]
    fn mutated_encodings_decode_as_postcard_does(
        v in value(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = codec::encode(&v).unwrap().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let ours = codec::decode::<V>(&bytes);
        match plain(&bytes) {
            Ok(p) if depth(&p) > MAX_DEPTH => {
                prop_assert_eq!(ours, Err(DecodeError::TooDeep { limit: MAX_DEPTH }));
            }
            // Refused for its depth before postcard reached its own error.
            Err(_) if ours == Err(DecodeError::TooDeep { limit: MAX_DEPTH }) => {}
            theirs => prop_assert_eq!(ours, theirs),
        }
    }
}
