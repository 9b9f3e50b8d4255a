//! The arguments of `#[remote(...)]`, on traits and on methods.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, LitStr, Meta, Path, Token};

/// Arguments of `#[remote]` on a trait.
pub(crate) struct TraitArgs {
    /// The path of the facade crate (`::farcall` unless `crate = "..."`).
    pub(crate) krate: Path,
    /// The interface's name on the wire, if not the trait's (`name =
    /// "..."`): it makes the interface id, and the catalogue shows it.
    pub(crate) name: Option<String>,
}

impl Parse for TraitArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut krate: Path = syn::parse_quote!(::farcall);
        let mut name = None;
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
        for meta in metas {
            match &meta {
                Meta::NameValue(nv) if nv.path.is_ident("crate") => {
                    krate = string_value(nv, "crate = \"path\"")?.parse()?;
                }
                Meta::NameValue(nv) if nv.path.is_ident("name") => {
                    let lit = string_value(nv, "name = \"Interface\"")?;
                    let ident: syn::Ident = lit.parse().map_err(|_| {
                        syn::Error::new_spanned(
                            &lit,
                            "the interface's name is a Rust identifier: name = \"Interface\"",
                        )
                    })?;
                    name = Some(ident.to_string());
                }
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "unknown argument; #[remote] on a trait takes `crate = \"path\"` and `name = \"Interface\"`",
                    ));
                }
            }
        }
        Ok(TraitArgs { krate, name })
    }
}

/// The string of `key = "..."`, or an error showing the form expected.
fn string_value(nv: &syn::MetaNameValue, form: &str) -> syn::Result<LitStr> {
    syn::parse2(quote::ToTokens::to_token_stream(&nv.value))
        .map_err(|_| syn::Error::new_spanned(&nv.value, format!("expected a string: {form}")))
}

/// What `#[remote(...)]` says about one method.
#[derive(Default)]
pub(crate) struct MethodArgs {
    /// Fire-and-forget: no reply.
    pub(crate) oneway: bool,
    /// Safe to retry on another object.
    pub(crate) idempotent: bool,
    /// `role = "..."`, each: read by authorization policies.
    pub(crate) roles: Vec<String>,
}

/// Takes the `#[remote(...)]` attributes off a method, returning what they
/// say. Unknown arguments are errors.
pub(crate) fn take_method_args(attrs: &mut Vec<Attribute>) -> syn::Result<MethodArgs> {
    let mut out = MethodArgs::default();
    let mut err: Option<syn::Error> = None;
    attrs.retain(|a| {
        if !a.path().is_ident("remote") {
            return true;
        }
        let r = a.parse_nested_meta(|m| {
            if m.path.is_ident("oneway") {
                out.oneway = true;
                Ok(())
            } else if m.path.is_ident("idempotent") {
                out.idempotent = true;
                Ok(())
            } else if m.path.is_ident("role") {
                let form = "a role is a name in a string: #[remote(role = \"admin\")]";
                let lit: LitStr = m
                    .value()
                    .map_err(|e| syn::Error::new(e.span(), form))?
                    .parse()
                    .map_err(|e| syn::Error::new(e.span(), form))?;
                let role = lit.value();
                if role.is_empty() || role.contains(char::is_whitespace) {
                    return Err(syn::Error::new_spanned(&lit, form));
                }
                out.roles.push(role);
                Ok(())
            } else {
                Err(m.error(
                    "unknown argument; a method takes #[remote(oneway)], #[remote(idempotent)] or #[remote(role = \"...\")]",
                ))
            }
        });
        if let Err(e) = r {
            match &mut err {
                Some(all) => all.combine(e),
                None => err = Some(e),
            }
        }
        false
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
