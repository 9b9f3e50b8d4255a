//! Procedural macros of farcall: `#[remote]`.
//!
//! Use them through the facade (`#[farcall::remote]`), never directly:
//! generated code names items through `::farcall::__private`.
//!
//! The work is split as parse (`ast`), validate (`valid`) and expand
//! (`expand`), with the attribute's own arguments in `attr`, the
//! rewriting of `impl` blocks in `implementation`, the stable hashes of
//! names and signatures in `hash`, and `#[derive(Schema)]` in `schema`.

mod ast;
mod attr;
mod expand;
mod export;
mod hash;
mod implementation;
mod schema;
mod valid;

use proc_macro::TokenStream;

/// Turns a trait into a remote interface, or an `impl` of one into an
/// implementation that can be served.
///
/// See the `farcall` crate's documentation for the full contract.
#[proc_macro_attribute]
pub fn remote(args: TokenStream, input: TokenStream) -> TokenStream {
    let input2 = proc_macro2::TokenStream::from(input.clone());
    let out = match syn::parse::<syn::Item>(input) {
        Ok(syn::Item::Trait(t)) => expand::remote_trait(args.into(), t),
        Ok(syn::Item::Impl(i)) => implementation::remote_impl(args.into(), i),
        Ok(other) => Err(syn::Error::new_spanned(
            item_keyword(&other),
            "#[remote] applies to a trait, or to an `impl` of a remote trait",
        )),
        Err(e) => Err(e),
    };
    match out {
        Ok(tokens) => tokens.into(),
        Err(e) => with_error(input2, e).into(),
    }
}

/// The user's item, untouched, next to the errors: the IDE keeps working.
fn with_error(item: proc_macro2::TokenStream, e: syn::Error) -> proc_macro2::TokenStream {
    let errors = e.to_compile_error();
    quote::quote! { #item #errors }
}

fn item_keyword(item: &syn::Item) -> proc_macro2::TokenStream {
    use quote::ToTokens;
    match item {
        syn::Item::Struct(s) => s.struct_token.to_token_stream(),
        syn::Item::Enum(e) => e.enum_token.to_token_stream(),
        syn::Item::Fn(f) => f.sig.fn_token.to_token_stream(),
        syn::Item::Mod(m) => m.mod_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// Derives `farcall::Schema`: the type's structure (field names and order,
/// field types, variants and their order) as serde puts it on the wire,
/// which `#[remote]` folds into the signature of every method that uses
/// the type.
///
/// serde's `rename`, `rename_all`, `rename_all_fields`, `skip`, `flatten`,
/// `tag`, `content`, `untagged` and `transparent` are honoured. serde's
/// `from`, `into` and `try_from` put another type on the wire: name it
/// with `#[schema(as = "Type")]` on the type (the same on a field whose
/// `serde(with = "...")` changes its encoding). `#[schema(crate =
/// "path")]` names the facade if it is not `::farcall`.
///
/// The facade's `farcall::schema` module runs this example:
///
/// ```ignore
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, farcall::Schema)]
/// #[serde(rename_all = "camelCase")]
/// pub struct Parcel {
///     pub width_mm: u32,
///     #[serde(skip)]
///     pub cached_volume: Option<u64>,
/// }
///
/// #[derive(Serialize, Deserialize, farcall::Schema)]
/// #[serde(into = "String", try_from = "String")]
/// #[schema(as = "String")]
/// pub struct Label(String);
/// ```
#[proc_macro_derive(Schema, attributes(schema))]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => schema::derive(input).unwrap_or_else(|e| e.to_compile_error()),
        Err(e) => e.to_compile_error(),
    }
    .into()
}

/// Registers an implementation at link time, so that
/// `node.export_registered()` creates it (with `Default`, or
/// `with = "path::to::constructor"`), exports it, and binds it in the
/// node's directory under `name`.
///
/// ```ignore
/// #[farcall::export(name = "services/calculator")]
/// #[farcall::remote]
/// impl Calculator for Calc { /* ... */ }
/// ```
#[proc_macro_attribute]
pub fn export(args: TokenStream, input: TokenStream) -> TokenStream {
    let input2 = proc_macro2::TokenStream::from(input.clone());
    let out = match syn::parse::<syn::Item>(input) {
        Ok(syn::Item::Impl(i)) => export::export(args.into(), i),
        Ok(other) => Err(syn::Error::new_spanned(
            item_keyword(&other),
            "#[export] applies to an `impl RemoteTrait for Type`",
        )),
        Err(e) => Err(e),
    };
    match out {
        Ok(tokens) => tokens.into(),
        Err(e) => with_error(input2, e).into(),
    }
}
