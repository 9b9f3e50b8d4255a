//! The model of a validated remote trait.

use syn::{Attribute, FnArg, Ident, ItemTrait, Pat, ReturnType, TraitItem, Type, TypeParamBound};

use crate::attr::{self, MethodArgs};
use crate::hash;
use crate::valid;

/// A remote trait, ready to expand.
pub(crate) struct RemoteTrait {
    /// The trait as the user wrote it, `#[remote]` method attributes removed.
    pub(crate) item: ItemTrait,
    /// Its methods.
    pub(crate) methods: Vec<Method>,
    /// Supertraits that are remote traits (everything but auto traits and
    /// lifetimes).
    pub(crate) supertraits: Vec<syn::TraitBound>,
    /// The interface's name: the trait's, unless `name = "..."` says
    /// otherwise.
    pub(crate) name: String,
    /// The interface id: a hash of the interface's name.
    pub(crate) id: u64,
}

/// One method.
pub(crate) struct Method {
    /// Doc comments, `#[cfg]` and other attributes, as written.
    pub(crate) attrs: Vec<Attribute>,
    /// Only the `#[cfg]` attributes, repeated on every generated piece.
    pub(crate) cfgs: Vec<Attribute>,
    pub(crate) ident: Ident,
    pub(crate) args: Vec<(Ident, Type)>,
    /// The whole `Result<T, E>`.
    pub(crate) output: Type,
    /// The `E`.
    pub(crate) err: Type,
    pub(crate) default: Option<syn::Block>,
    pub(crate) flags: MethodArgs,
    /// Stable id: hash of the name.
    pub(crate) id: u32,
    /// Hash of the argument and result types as written: the signature
    /// in the descriptor of a generic interface, which stands for every
    /// instantiation (the words on the wire hash the structure of each).
    pub(crate) signature: u32,
}

const AUTO: &[&str] = &["Send", "Sync", "Sized", "Unpin"];

/// Builds the model; `item` has passed validation. `name` is the
/// interface's name if it is not the trait's.
pub(crate) fn build(mut item: ItemTrait, name: Option<String>) -> syn::Result<RemoteTrait> {
    let mut errors = valid::Errors::default();
    let mut methods = Vec::new();
    for ti in &mut item.items {
        let TraitItem::Fn(f) = ti else { continue };
        let flags = match attr::take_method_args(&mut f.attrs) {
            Ok(flags) => flags,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let ReturnType::Type(_, output) = &f.sig.output else {
            continue;
        };
        let Some((ok, err)) = valid::result_types(output) else {
            continue;
        };
        if flags.oneway && !is_unit(ok) {
            errors.spanned(
                ok,
                "a #[remote(oneway)] method returns `Result<(), E>`: no reply comes back to carry a value",
            );
        }
        let args: Vec<(Ident, Type)> = f
            .sig
            .inputs
            .iter()
            .skip(1)
            .filter_map(|a| match a {
                FnArg::Typed(pt) => match &*pt.pat {
                    Pat::Ident(pi) => Some((pi.ident.clone(), (*pt.ty).clone())),
                    _ => None,
                },
                FnArg::Receiver(_) => None,
            })
            .collect();
        let mut sig_text = String::new();
        for (_, ty) in &args {
            sig_text.push_str(&normalize(ty));
            sig_text.push(',');
        }
        sig_text.push_str("->");
        sig_text.push_str(&normalize(output));
        if flags.oneway {
            sig_text.push_str("!oneway");
        }
        let name = f.sig.ident.to_string();
        methods.push(Method {
            cfgs: f
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("cfg"))
                .cloned()
                .collect(),
            attrs: f.attrs.clone(),
            ident: f.sig.ident.clone(),
            args,
            output: (**output).clone(),
            err: err.clone(),
            default: f.default.clone(),
            flags,
            id: hash::fnv1a32(name.as_bytes()),
            signature: hash::fnv1a32(sig_text.as_bytes()),
        });
    }
    for (i, a) in methods.iter().enumerate() {
        if let Some(b) = methods[..i].iter().find(|b| b.id == a.id) {
            errors.spanned(
                &a.ident,
                &format!(
                    "the names `{}` and `{}` hash to the same method id; rename one",
                    a.ident, b.ident
                ),
            );
        }
    }
    errors.finish()?;
    let supertraits = item
        .supertraits
        .iter()
        .filter_map(|b| match b {
            TypeParamBound::Trait(t) => {
                let last = t.path.segments.last()?.ident.to_string();
                (!AUTO.contains(&last.as_str())).then(|| t.clone())
            }
            _ => None,
        })
        .collect();
    let name = name.unwrap_or_else(|| item.ident.to_string());
    let id = hash::fnv1a64(name.as_bytes());
    Ok(RemoteTrait {
        item,
        methods,
        supertraits,
        name,
        id,
    })
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// The text of a type for the signature hash: whitespace removed and
/// every path cut to its last segment, so `std::vec::Vec<u8>` and `Vec<u8>`
/// agree.
pub(crate) fn normalize(ty: &Type) -> String {
    let text = quote::ToTokens::to_token_stream(ty).to_string();
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let mut chars = text.chars().filter(|c| !c.is_whitespace()).peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// The text of a type as written, for descriptors.
pub(crate) fn type_text(ty: &Type) -> String {
    quote::ToTokens::to_token_stream(ty)
        .to_string()
        .replace(" < ", "<")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
        .replace("( ", "(")
        .replace(" )", ")")
}
