//! `#[remote]` on an `impl` block: each `async fn` becomes the boxed
//! method the remote trait declares, so implementations read naturally.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{ImplItem, ItemImpl, ReturnType};

use crate::attr::TraitArgs;
use crate::valid;

/// Rewrites the `async fn`s of an implementation of a remote trait.
pub(crate) fn remote_impl(args: TokenStream, mut item: ItemImpl) -> syn::Result<TokenStream> {
    let args: TraitArgs = syn::parse2(args)?;
    if item.trait_.is_none() {
        return Err(syn::Error::new_spanned(
            item.impl_token,
            "#[remote] on an `impl` block needs a trait: `impl RemoteTrait for Type`",
        ));
    }
    let p = {
        let k = &args.krate;
        quote!(#k::__private)
    };
    let lt = syn::Lifetime::new("'__fc", Span::call_site());
    let mut errors = valid::Errors::default();
    for ii in &mut item.items {
        let ImplItem::Fn(f) = ii else { continue };
        if f.sig.asyncness.is_none() {
            // A method boxed by hand is left alone; one written like the
            // trait's but without `async` is reported here, then rewritten
            // as if it were async so rustc adds no signature mismatch.
            let plain = match &f.sig.output {
                ReturnType::Default => true,
                ReturnType::Type(_, t) => valid::result_types(t).is_some(),
            };
            if !plain {
                continue;
            }
            errors.spanned(
                f.sig.fn_token,
                "the methods of a remote trait are `async fn`: write `async fn` in the `impl` too",
            );
        }
        f.sig.asyncness = None;
        let output = match &f.sig.output {
            ReturnType::Type(_, t) => quote!(#t),
            ReturnType::Default => quote!(()),
        };
        f.sig.generics.params.insert(0, syn::parse_quote!(#lt));
        if let Some(syn::FnArg::Receiver(r)) = f.sig.inputs.first_mut()
            && let Some((_, l)) = &mut r.reference
        {
            *l = Some(lt.clone());
            *r.ty = syn::parse_quote!(&#lt Self);
        }
        f.sig.output = syn::parse_quote!(-> #p::BoxFuture<#lt, #output>);
        let body = &f.block;
        f.block = syn::parse_quote!({
            ::std::boxed::Box::pin(async move {
                let __farcall_ret: #output = #body;
                #[allow(unreachable_code)]
                __farcall_ret
            })
        });
    }
    match errors.finish() {
        Ok(()) => Ok(quote!(#item)),
        Err(e) => {
            let e = e.to_compile_error();
            Ok(quote!(#item #e))
        }
    }
}
