//! `#[export(name = "...")]` on an `impl RemoteTrait for Type`: registers,
//! at link time, a factory that creates the object (with `Default`, or the
//! function given as `with = "path"`) and exports it as `dyn RemoteTrait`,
//! so that `node.export_registered()` publishes it under `name`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{ItemImpl, LitStr, Meta, Path, Token};

struct ExportArgs {
    name: LitStr,
    with: Option<Path>,
    krate: Path,
}

impl Parse for ExportArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut name = None;
        let mut with = None;
        let mut krate: Path = syn::parse_quote!(::farcall);
        for meta in Punctuated::<Meta, Token![,]>::parse_terminated(input)? {
            let Meta::NameValue(nv) = &meta else {
                return Err(syn::Error::new_spanned(
                    &meta,
                    "expected `name = \"...\"`, `with = \"path::to::constructor\"` or `crate = \"...\"`",
                ));
            };
            let lit: LitStr = syn::parse2(quote::ToTokens::to_token_stream(&nv.value))
                .map_err(|_| syn::Error::new_spanned(&nv.value, "expected a string"))?;
            if nv.path.is_ident("name") {
                name = Some(lit);
            } else if nv.path.is_ident("with") {
                with = Some(lit.parse()?);
            } else if nv.path.is_ident("crate") {
                krate = lit.parse()?;
            } else {
                return Err(syn::Error::new_spanned(
                    &nv.path,
                    "unknown argument; #[export] takes `name`, `with` and `crate`",
                ));
            }
        }
        let name = name.ok_or_else(|| {
            syn::Error::new(
                input.span(),
                "#[export] needs the directory name: #[export(name = \"services/calculator\")]",
            )
        })?;
        Ok(ExportArgs { name, with, krate })
    }
}

/// Expands `#[export]`.
pub(crate) fn export(args: TokenStream, item: ItemImpl) -> syn::Result<TokenStream> {
    let args: ExportArgs = syn::parse2(args)?;
    let Some((_, trait_path, _)) = &item.trait_ else {
        return Err(syn::Error::new_spanned(
            item.impl_token,
            "#[export] applies to an `impl RemoteTrait for Type`",
        ));
    };
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "#[export] cannot register a generic implementation: name the concrete type",
        ));
    }
    let k = &args.krate;
    let p = quote!(#k::__private);
    let ty = &item.self_ty;
    let name = &args.name;
    let iface = trait_path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let create = match &args.with {
        Some(f) => quote_spanned!(f.span()=> #f()),
        None => quote_spanned!(ty.span()=> <#ty as ::core::default::Default>::default()),
    };
    Ok(quote! {
        #item

        const _: () = {
            fn __farcall_create(node: &#p::Node) -> #p::AnyRemote {
                let object: #ty = #create;
                let r: #p::Remote<dyn #trait_path> = node.export(object);
                r.into_any()
            }
            #p::inventory::submit! {
                #p::ExportRegistration {
                    name: #name,
                    interface: #iface,
                    create: __farcall_create,
                }
            }
        };
    })
}
