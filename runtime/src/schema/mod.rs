//! Structural schemas: what a type looks like on the wire, so that a
//! client and a server built from different versions of an interface find
//! out before a value is decoded the wrong way.
//!
//! Every argument, result and error type of a `#[remote]` method
//! implements [`Schema`]: farcall implements it for the standard types,
//! `#[derive(farcall::Schema)]` for the user's. A method's [`Signature`]
//! collects the structure of its types (field names and order, field
//! types, enum variants and their order, recursively, generics
//! instantiated) and hashes it into the signature word every call carries:
//! the check costs one comparison per call, and a different structure is
//! an `InterfaceMismatch` naming the method and the type.
//!
//! ```
//! use farcall_runtime::schema::{Fields, Schema, Shape, Signature, Types};
//!
//! struct Parcel { width: u32, height: u32 }
//!
//! impl Schema for Parcel {
//!     fn describe(types: &mut Types) -> String {
//!         types.define::<Self>("Parcel".to_owned(), Vec::new(), |t| {
//!             Shape::Struct(Fields::named([("width", t.of::<u32>()), ("height", t.of::<u32>())]))
//!         })
//!     }
//! }
//!
//! let sig = Signature::build(|t| (vec![t.of::<Vec<Parcel>>()], t.of::<Option<u64>>()));
//! assert_eq!(sig.args, ["Vec<Parcel>"]);
//! assert_eq!(sig.types[0].to_string(), "struct Parcel { width: u32, height: u32 }");
//! ```

mod impls;
pub(crate) mod mismatch;

use std::fmt;

/// A type that describes its structure to farcall.
///
/// `#[remote]` requires it of every argument, result and error type.
/// Derive it (`#[derive(farcall::Schema)]`) next to serde's derives; the
/// derive reads serde's attributes (`rename`, `rename_all`, `skip`,
/// `flatten`, `tag`, `content`, `untagged`, `transparent`) so that the
/// schema describes what serde puts on the wire.
///
/// Implement it by hand for a type with a hand-written `Serialize`:
/// return the text of a type with the same encoding (`Self` encoded as a
/// `String`: `types.of::<String>()`), or [`Types::define`] a shape.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not describe its structure to farcall",
    label = "this type needs `farcall::Schema`",
    note = "derive it beside serde's: `#[derive(Serialize, Deserialize, farcall::Schema)]`, or implement `farcall::Schema` by hand"
)]
pub trait Schema {
    /// Describes `Self` to `types` and returns how a field of this type is
    /// written: `u32`, `Vec<Parcel>`, `Map<String, Parcel>`. A struct or an
    /// enum adds its definition to `types` once ([`Types::define`]) and is
    /// written by its name.
    fn describe(types: &mut Types) -> String;
}

/// How deep definitions may nest while being described: a guard for the
/// stack against a hand-written [`Schema`] that defines ever new types
/// inside each other. A derived schema cannot get there (a type that
/// recurses through ever larger instantiations,
/// `struct N<T>(Option<Box<N<Vec<T>>>>)`, does not compile with serde
/// either); past the bound a type is written by its name only.
pub const MAX_DEPTH: usize = 64;

/// The named types met while describing a signature, each defined once.
///
/// A type refers to another by name, so recursive types (`struct Tree {
/// children: Vec<Tree> }`) end at the back-reference.
#[derive(Debug, Default)]
pub struct Types {
    /// `std::any::type_name` of each type defined, beside its definition.
    keys: Vec<&'static str>,
    defs: Vec<TypeDef>,
    open: usize,
}

impl Types {
    /// An empty set.
    pub fn new() -> Types {
        Types::default()
    }

    /// Describes `T`: the text that names it in a field or an argument.
    pub fn of<T: Schema + ?Sized>(&mut self) -> String {
        T::describe(self)
    }

    /// Defines the named type `T` as `name` with serde representation
    /// attributes `repr` (`tag = "kind"`, `untagged`; empty for the
    /// default), its shape made by `shape` the first time only: a
    /// back-reference from inside `shape` returns the name at once.
    /// Returns `name`.
    pub fn define<T: ?Sized>(
        &mut self,
        name: String,
        repr: Vec<String>,
        shape: impl FnOnce(&mut Types) -> Shape,
    ) -> String {
        let key = std::any::type_name::<T>();
        if self.open >= MAX_DEPTH || self.keys.contains(&key) {
            return name;
        }
        let at = self.defs.len();
        self.keys.push(key);
        self.defs.push(TypeDef {
            name: name.clone(),
            repr,
            shape: Shape::Struct(Fields::Unit),
        });
        self.open += 1;
        let made = shape(self);
        self.open -= 1;
        self.defs[at].shape = made;
        name
    }

    /// The definitions, in the order they were first met.
    pub fn definitions(&self) -> &[TypeDef] {
        &self.defs
    }

    /// The definitions, in the order they were first met.
    pub fn into_definitions(self) -> Vec<TypeDef> {
        self.defs
    }
}

/// The definition of a named type: a struct or an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDef {
    /// Its name as serde writes it (`#[serde(rename)]` applied), with its
    /// generic arguments: `Page<Parcel>`.
    pub name: String,
    /// serde's representation attributes, as written (`tag = "kind"`,
    /// `content = "data"`, `untagged`); empty for the default.
    pub repr: Vec<String>,
    /// Its fields or variants.
    pub shape: Shape,
}

/// The body of a named type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A struct.
    Struct(Fields),
    /// An enum: its variants in order (the order is the encoding).
    Enum(Vec<Variant>),
}

/// The fields of a struct or of an enum variant.
///
/// A field's name starts with `..` when it is `#[serde(flatten)]`, and
/// ends with `?` when serde may leave it out one way only
/// (`skip_serializing`, `skip_serializing_if`, `skip_deserializing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fields {
    /// `{ a: A, b: B }`.
    Named(Vec<Field>),
    /// `(A, B)`.
    Unnamed(Vec<String>),
    /// No fields.
    Unit,
}

impl Fields {
    /// Named fields from `(name, type)` pairs.
    pub fn named<N: Into<String>>(fields: impl IntoIterator<Item = (N, String)>) -> Fields {
        Fields::Named(
            fields
                .into_iter()
                .map(|(name, ty)| Field {
                    name: name.into(),
                    ty,
                })
                .collect(),
        )
    }
}

/// A named field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name as serde writes it.
    pub name: String,
    /// Its type's text.
    pub ty: String,
}

/// A variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Its name as serde writes it.
    pub name: String,
    /// Its fields.
    pub fields: Fields,
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fields::Named(fields) if fields.is_empty() => f.write_str(" {}"),
            Fields::Named(fields) => {
                f.write_str(" { ")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", field.name, field.ty)?;
                }
                f.write_str(" }")
            }
            Fields::Unnamed(types) => write!(f, "({})", types.join(", ")),
            Fields::Unit => Ok(()),
        }
    }
}

/// Rust-like: `struct Parcel { width: u32, height: u32 }`,
/// `#[serde(tag = "kind")] enum Shape { Circle { r: f64 }, Empty }`.
impl fmt::Display for TypeDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.repr.is_empty() {
            write!(f, "#[serde({})] ", self.repr.join(", "))?;
        }
        match &self.shape {
            Shape::Struct(fields) => write!(f, "struct {}{fields}", self.name),
            Shape::Enum(variants) => {
                write!(f, "enum {} {{", self.name)?;
                for (i, v) in variants.iter().enumerate() {
                    f.write_str(if i > 0 { ", " } else { " " })?;
                    write!(f, "{}{}", v.name, v.fields)?;
                }
                f.write_str(if variants.is_empty() { "}" } else { " }" })
            }
        }
    }
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a-64 of `text`, folded to 32 bits: `(h >> 32) ^ h`.
pub(crate) fn hash32(text: &str) -> u32 {
    let h = crate::id::fnv1a64(SEED, text.as_bytes());
    (h >> 32) as u32 ^ h as u32
}

/// The structure of a method's signature: its argument types, its result
/// type (`Result<T, E>`), and the definition of every named type they
/// reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The argument types' texts, in order.
    pub args: Vec<String>,
    /// The result type's text.
    pub result: String,
    /// Every named type the arguments and the result reach, in the order
    /// first met.
    pub types: Vec<TypeDef>,
}

impl Signature {
    /// The signature `describe` returns: `(argument types, result type)`,
    /// described into one set of types.
    pub fn build(describe: impl FnOnce(&mut Types) -> (Vec<String>, String)) -> Signature {
        let mut types = Types::new();
        let (args, result) = describe(&mut types);
        Signature {
            args,
            result,
            types: types.into_definitions(),
        }
    }

    /// The text the signature hash is computed over: the signature, then
    /// `;` and each definition, in order (`(Parcel) -> Result<u32,
    /// RemoteError>;struct Parcel { width: u32, height: u32 }`).
    pub fn canonical(&self) -> String {
        let mut text = self.to_string();
        for d in &self.types {
            text.push(';');
            text.push_str(&d.to_string());
        }
        text
    }

    /// A 32-bit hash of the whole structure ([`canonical`](Self::canonical),
    /// FNV-1a-64 folded): equal on both sides exactly when the argument
    /// and result types, and every definition they reach, are (up to a
    /// collision of the hash).
    pub fn fingerprint(&self) -> u32 {
        hash32(&self.canonical())
    }
}

/// `(Parcel, u32) -> Result<u64, RemoteError>`.
impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}) -> {}", self.args.join(", "), self.result)
    }
}
