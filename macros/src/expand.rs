//! Expansion: one generator, one method per generated artifact.
//!
//! For `trait Shape` it emits:
//! - the trait, its `async fn`s boxed so that `dyn Shape` works;
//! - `ShapeClient`, an alias of the generic stub, and the trait's
//!   implementation for every stub (so subtraits' stubs inherit it);
//! - `impl Interface for dyn Shape`: the stub factory and the dispatcher;
//! - `impl<T: Shape> Coerce<T> for dyn Shape`, which lets `node.export(obj)`
//!   infer the interface;
//! - the interface descriptor, submitted to the link-time catalogue, with
//!   the structure of each method's types and the method words hashed
//!   from it (`descriptor`).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemTrait, Path};

use crate::ast::{self, Method, RemoteTrait};
use crate::attr::TraitArgs;
use crate::valid;

mod descriptor;

/// Expands `#[remote]` on a trait.
///
/// On error the user's trait is still emitted next to the errors (so the
/// IDE keeps working), its methods' `#[remote(...)]` attributes removed:
/// left in, each would add a spurious "cannot find attribute `remote`".
pub(crate) fn remote_trait(args: TokenStream, item: ItemTrait) -> syn::Result<TokenStream> {
    match expand(args, item.clone()) {
        Ok(tokens) => Ok(tokens),
        Err(e) => {
            let mut item = item;
            for ti in &mut item.items {
                if let syn::TraitItem::Fn(f) = ti {
                    f.attrs.retain(|a| !a.path().is_ident("remote"));
                }
            }
            let errors = e.to_compile_error();
            Ok(quote! { #item #errors })
        }
    }
}

fn expand(args: TokenStream, item: ItemTrait) -> syn::Result<TokenStream> {
    let args = syn::parse2::<TraitArgs>(args);
    let mut errors = valid::Errors::default();
    if let Err(e) = &args {
        errors.push(e.clone());
    }
    valid::check_trait(&item, &mut errors);
    errors.finish()?;
    let args = args?;
    let model = ast::build(item, args.name.clone())?;
    Ok(Generator {
        krate: &args.krate,
        t: &model,
    }
    .generate())
}

struct Generator<'a> {
    krate: &'a Path,
    t: &'a RemoteTrait,
}

/// `tokens`, every one of them at `span` (rustc reports a predicate at the
/// attribute if its tokens come from both the user and the macro).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            if let proc_macro2::TokenTree::Group(g) = &t {
                let mut inner = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                inner.set_span(span);
                t = inner.into();
            }
            t.set_span(span);
            t
        })
        .collect()
}

/// `'fc`: the lifetime of every boxed method future.
fn lt() -> syn::Lifetime {
    syn::Lifetime::new("'__fc", Span::call_site())
}

impl Generator<'_> {
    fn generate(&self) -> TokenStream {
        let parts = [
            self.the_trait(),
            self.client_alias(),
            self.stub_impl(),
            self.interface_impl(),
            self.coerce_impl(),
            self.upcast_impls(),
            self.descriptor(),
        ];
        quote! { #(#parts)* }
    }

    fn private(&self) -> TokenStream {
        let k = self.krate;
        quote!(#k::__private)
    }

    fn ident(&self) -> &Ident {
        &self.t.item.ident
    }

    /// `Trait<A, B>` as a type path, for `dyn Trait<A, B>`.
    fn trait_path(&self) -> TokenStream {
        let ident = self.ident();
        let (_, ty_generics, _) = self.t.item.generics.split_for_impl();
        quote!(#ident #ty_generics)
    }

    /// Bounds every trait-level type parameter must meet to cross the wire.
    fn param_bounds(&self) -> TokenStream {
        let p = self.private();
        quote!(#p::serde::Serialize + #p::serde::de::DeserializeOwned + ::core::marker::Send + ::core::marker::Sync + 'static)
    }

    /// The generics of the trait with the wire bounds added.
    fn bounded_generics(&self) -> syn::Generics {
        let mut g = self.t.item.generics.clone();
        let bounds = self.param_bounds();
        for p in g.type_params_mut() {
            let more: syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]> =
                syn::parse_quote!(#bounds);
            p.bounds.extend(more);
        }
        g
    }

    /// The generics of the generated impls: `bounded_generics`, plus
    /// `Type: Serialize + DeserializeOwned` in the where clause for every
    /// argument and result type, spanned at the user's type. A type that
    /// cannot cross the wire is then reported there, once, instead of at
    /// the attribute from inside the generated bodies (which assume the
    /// clause). Methods under `#[cfg]` are left out: a where clause cannot
    /// carry attributes.
    ///
    /// `Schema` joins the clause of a generic trait only: for a plain one
    /// the structure is described in bodies that name each type at its
    /// span ([`Generator::signature_of`]), so that a type without it is
    /// reported there once, and not again by the link-time registration of
    /// the descriptor or wherever the interface is used.
    fn wire_generics(&self) -> syn::Generics {
        let p = self.private();
        let schema = self.is_generic().then(|| quote!(+ #p::Schema));
        let mut g = self.bounded_generics();
        let where_clause = g.make_where_clause();
        let mut seen = ::std::collections::HashSet::new();
        for m in self.t.methods.iter().filter(|m| m.cfgs.is_empty()) {
            let Some((ok, err)) = valid::result_types(&m.output) else {
                continue;
            };
            for ty in m.args.iter().map(|(_, t)| t).chain([ok, err]) {
                if !seen.insert(ast::normalize(ty)) {
                    continue;
                }
                let last = quote::ToTokens::to_token_stream(ty)
                    .into_iter()
                    .last()
                    .map_or_else(Span::call_site, |t| t.span());
                let bounds = respan(
                    quote!(: #p::serde::Serialize + #p::serde::de::DeserializeOwned #schema),
                    last,
                );
                where_clause.predicates.push(syn::parse_quote!(#ty #bounds));
            }
        }
        g
    }

    /// The signature of a method as the boxed trait method.
    fn boxed_sig(&self, m: &Method) -> TokenStream {
        let p = self.private();
        let lt = lt();
        let ident = &m.ident;
        let output = &m.output;
        let args = m.args.iter().map(|(n, t)| quote!(#n: #t));
        quote! {
            fn #ident<#lt>(&#lt self, #(#args),*) -> #p::BoxFuture<#lt, #output>
        }
    }

    fn the_trait(&self) -> TokenStream {
        let t = &self.t.item;
        let attrs = &t.attrs;
        let vis = &t.vis;
        let ident = &t.ident;
        let generics = self.bounded_generics();
        let where_clause = &generics.where_clause;
        let supers = t.supertraits.iter();
        let colon = if t.supertraits.is_empty() {
            quote!(:)
        } else {
            quote!(: #(#supers +)*)
        };
        let methods = self.t.methods.iter().map(|m| {
            let attrs = &m.attrs;
            let sig = self.boxed_sig(m);
            match &m.default {
                None => quote! { #(#attrs)* #sig; },
                Some(body) => {
                    let output = &m.output;
                    quote! {
                        #(#attrs)*
                        #sig {
                            ::std::boxed::Box::pin(async move {
                                let __farcall_ret: #output = #body;
                                #[allow(unreachable_code)]
                                __farcall_ret
                            })
                        }
                    }
                }
            }
        });
        quote! {
            #(#attrs)*
            #vis trait #ident #generics #colon ::core::marker::Send + ::core::marker::Sync + 'static #where_clause {
                #(#methods)*
            }
        }
    }

    fn client_alias(&self) -> TokenStream {
        let p = self.private();
        let t = &self.t.item;
        let vis = &t.vis;
        let client = format_ident!("{}Client", t.ident);
        let generics = &t.generics;
        let path = self.trait_path();
        let doc = format!(
            "The generated stub of [`{}`]: calls it on a remote object.",
            t.ident
        );
        quote! {
            #[doc = #doc]
            #vis type #client #generics = #p::Stub<dyn #path>;
        }
    }

    fn stub_impl(&self) -> TokenStream {
        let p = self.private();
        let generics = self.wire_generics();
        let params = generics.params.iter();
        let path = self.trait_path();
        let where_clause = &generics.where_clause;
        let methods = self.t.methods.iter().map(|m| {
            let attrs = &m.cfgs;
            let sig = self.boxed_sig(m);
            let word = self.word(m);
            let iface = &self.t.name;
            let idempotent = m.flags.idempotent;
            let name = m.ident.to_string();
            let err = &m.err;
            let output = &m.output;
            let names = m.args.iter().map(|(n, _)| n);
            let tuple = quote!((#(&#names,)*));
            let body = if m.flags.oneway {
                quote! {
                    match self.core().send(#word, (#iface, #name), &#tuple).await {
                        ::core::result::Result::Ok(()) => ::core::result::Result::Ok(()),
                        ::core::result::Result::Err(e) => ::core::result::Result::Err(
                            <#err as ::core::convert::From<#p::RemoteError>>::from(e),
                        ),
                    }
                }
            } else {
                let structure = self.signature_of(m);
                quote! {
                    match self.core().call_method::<_, #output>(#word, (#iface, #name), #idempotent, &#tuple).await {
                        ::core::result::Result::Ok(r) => r,
                        ::core::result::Result::Err(e) => ::core::result::Result::Err(
                            <#err as ::core::convert::From<#p::RemoteError>>::from(
                                #p::explain_mismatch(e, #iface, #name, || #structure),
                            ),
                        ),
                    }
                }
            };
            quote! {
                #(#attrs)*
                #sig {
                    ::std::boxed::Box::pin(async move { #body })
                }
            }
        });
        quote! {
            impl<__FarcallI: ?::core::marker::Sized + 'static, #(#params),*> #path for #p::Stub<__FarcallI> #where_clause {
                #(#methods)*
            }
        }
    }

    fn interface_impl(&self) -> TokenStream {
        let p = self.private();
        let generics = self.wire_generics();
        let (impl_generics, _, where_clause) = generics.split_for_impl();
        let path = self.trait_path();
        let describe = self.describe_fn();
        let iface = &self.t.name;
        // The dispatcher's own locals resolve at the macro's definition
        // site, so a user's argument named `this` or `cx` cannot shadow them.
        let [this, cx, method, payload] =
            ["this", "cx", "method", "payload"].map(|n| Ident::new(n, Span::mixed_site()));
        let arms = self.t.methods.iter().map(|m| {
            let cfgs = &m.cfgs;
            let id = m.id;
            let word = self.word(m);
            let ident = &m.ident;
            let name = ident.to_string();
            let names: Vec<&Ident> = m.args.iter().map(|(n, _)| n).collect();
            let types = m.args.iter().map(|(_, t)| {
                quote_spanned!(t.span()=> #t)
            });
            let output = &m.output;
            let structure = self.signature_of(m);
            quote! {
                #(#cfgs)*
                #id => {
                    if #method != #word {
                        return ::core::option::Option::Some(#p::mismatch(#iface, #name, &#structure));
                    }
                    let (#(#names,)*): (#(#types,)*) = match #p::decode_args(&#cx, &#payload) {
                        ::core::result::Result::Ok(v) => v,
                        ::core::result::Result::Err(e) => {
                            return ::core::option::Option::Some(#p::ready(
                                ::core::result::Result::Err(e),
                            ));
                        }
                    };
                    let #this = <::std::sync::Arc<Self> as ::core::clone::Clone>::clone(#this);
                    return ::core::option::Option::Some(::std::boxed::Box::pin(#cx.scope(async move {
                        let r: #output = #this.#ident(#(#names),*).await;
                        #p::reply(&r)
                    })));
                }
            }
        });
        let iface_id = self.t.id;
        let upcasts: Vec<TokenStream> = self
            .t
            .supertraits
            .iter()
            .map(|s| {
                quote! {
                    {
                        let same: ::std::sync::Arc<Self> = <::std::sync::Arc<Self> as ::core::clone::Clone>::clone(this);
                        let up: ::std::sync::Arc<dyn #s> = same;
                        if let ::core::option::Option::Some(a) = <dyn #s as #p::Interface>::upcast_to(&up, to) {
                            return ::core::option::Option::Some(a);
                        }
                    }
                }
            })
            .collect();
        let supers = self.t.supertraits.iter().map(|s| {
            quote! {
                {
                    let same: ::std::sync::Arc<Self> = <::std::sync::Arc<Self> as ::core::clone::Clone>::clone(#this);
                    let up: ::std::sync::Arc<dyn #s> = same;
                    if let ::core::option::Option::Some(f) =
                        <dyn #s as #p::Interface>::dispatch(&up, ::core::clone::Clone::clone(&#cx), #method, ::core::clone::Clone::clone(&#payload))
                    {
                        return ::core::option::Option::Some(f);
                    }
                }
            }
        });
        quote! {
            impl #impl_generics #p::Interface for dyn #path #where_clause {
                fn descriptor() -> &'static #p::InterfaceDescriptor {
                    #describe()
                }

                fn stub(core: #p::StubCore) -> ::std::sync::Arc<Self> {
                    ::std::sync::Arc::new(#p::Stub::<dyn #path>::new(core))
                }

                fn upcast_to(
                    this: &::std::sync::Arc<Self>,
                    to: u64,
                ) -> ::core::option::Option<::std::boxed::Box<dyn ::std::any::Any + ::core::marker::Send + ::core::marker::Sync>> {
                    if to == #iface_id {
                        let same: ::std::sync::Arc<Self> = <::std::sync::Arc<Self> as ::core::clone::Clone>::clone(this);
                        return ::core::option::Option::Some(::std::boxed::Box::new(same));
                    }
                    #(#upcasts)*
                    ::core::option::Option::None
                }

                #[allow(unused_variables, unreachable_code, clippy::let_unit_value, clippy::unit_arg)]
                fn dispatch(
                    #this: &::std::sync::Arc<Self>,
                    #cx: #p::CallContext,
                    #method: u64,
                    #payload: #p::Bytes,
                ) -> ::core::option::Option<#p::OutcomeFuture> {
                    match (#method >> 32) as u32 {
                        #(#arms)*
                        _ => {}
                    }
                    #(#supers)*
                    ::core::option::Option::None
                }
            }
        }
    }

    fn coerce_impl(&self) -> TokenStream {
        let p = self.private();
        let mut generics = self.wire_generics();
        let path = self.trait_path();
        generics.params.push(syn::parse_quote!(__FarcallT: #path));
        let (impl_generics, _, where_clause) = generics.split_for_impl();
        quote! {
            impl #impl_generics #p::Coerce<__FarcallT> for dyn #path #where_clause {
                fn coerce(obj: __FarcallT) -> ::std::sync::Arc<Self> {
                    ::std::sync::Arc::new(obj)
                }
            }
        }
    }

    /// `Upcast<dyn Super> for dyn Trait`, one per direct remote supertrait:
    /// `Remote<dyn Circle>::upcast::<dyn Shape>()`.
    fn upcast_impls(&self) -> TokenStream {
        let p = self.private();
        let generics = self.wire_generics();
        let (impl_generics, _, where_clause) = generics.split_for_impl();
        let path = self.trait_path();
        let impls = self.t.supertraits.iter().map(|s| {
            quote! {
                impl #impl_generics #p::Upcast<dyn #s> for dyn #path #where_clause {
                    fn upcast(this: ::std::sync::Arc<Self>) -> ::std::sync::Arc<dyn #s> {
                        this
                    }
                }
            }
        });
        quote! { #(#impls)* }
    }
}
