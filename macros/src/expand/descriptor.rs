//! The interface descriptor, and what is derived from the same
//! description of each method: its structure (`Signature`) and its word.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::{Generator, respan};
use crate::ast::{self, Method};
use crate::valid;

impl Generator<'_> {
    /// Whether the trait has type parameters.
    pub(super) fn is_generic(&self) -> bool {
        self.t.item.generics.type_params().next().is_some()
    }

    /// An expression that describes the method's structure into a
    /// `Signature`: its argument types, then its result type. Each type is
    /// described at its own span, so a type without `Schema` is reported
    /// at the user's type (the ok and error types of the result apart).
    pub(super) fn signature_of(&self, m: &Method) -> TokenStream {
        let p = self.private();
        let types = Ident::new("__farcall_types", Span::mixed_site());
        let of = |ty: &syn::Type| {
            let span = quote::ToTokens::to_token_stream(ty)
                .into_iter()
                .last()
                .map_or_else(Span::call_site, |t| t.span());
            let call = respan(quote!(.of::<), span);
            let close = respan(quote!(>()), span);
            quote!(#types #call #ty #close)
        };
        let args = m.args.iter().map(|(_, t)| of(t));
        let result = match valid::result_types(&m.output) {
            Some((ok, err)) => {
                let (ok, err) = (of(ok), of(err));
                quote!(#p::result_text(#ok, #err))
            }
            None => of(&m.output),
        };
        quote! {
            #p::Signature::build(|#types: &mut #p::Types| (
                ::std::vec![#(#args),*],
                #result,
            ))
        }
    }

    /// The method word: the name's hash, then the hash of the structure
    /// of its types, computed once and kept in a `static`; for a generic
    /// interface, once per instantiation (`Store<i64>` and `Store<u64>`
    /// must not decode each other's arguments).
    pub(super) fn word(&self, m: &Method) -> TokenStream {
        let p = self.private();
        let id = m.id;
        if self.is_generic() {
            let params = self.t.item.generics.type_params().map(|t| &t.ident);
            let structure = self.signature_of(m);
            let oneway = m.flags.oneway;
            quote! {{
                static WORD: #p::Words = #p::Words::new();
                WORD.get::<(#(#params,)*)>(|| #p::method_word(#id, #p::signature_hash(&#structure, #oneway)))
            }}
        } else {
            let describe = self.describe_fn();
            quote! {{
                static WORD: ::std::sync::OnceLock<u64> = ::std::sync::OnceLock::new();
                *WORD.get_or_init(|| #p::word_of(#describe(), #id))
            }}
        }
    }

    /// The function that builds the descriptor. Its name has the
    /// attribute's span, not the trait's: the diagnostics of the user's
    /// types it names then match (and merge with) those of the impls.
    pub(super) fn describe_fn(&self) -> Ident {
        Ident::new(
            &format!("__farcall_describe_{}", self.ident()),
            Span::call_site(),
        )
    }

    pub(super) fn descriptor(&self) -> TokenStream {
        let p = self.private();
        let describe = self.describe_fn();
        let name = &self.t.name;
        let id = self.t.id;
        // A supertrait's name and id are its descriptor's (it may have a
        // `name = "..."` of its own). The descriptor of a generic
        // supertrait cannot be named here, outside its instantiation: its
        // trait's name stands for it, as its id is the hash of that name.
        let (super_names, super_ids): (Vec<TokenStream>, Vec<TokenStream>) = self
            .t
            .supertraits
            .iter()
            .map(|s| {
                let last = s.path.segments.last();
                let plain = last.is_some_and(|seg| seg.arguments.is_empty());
                if plain {
                    (
                        quote!(<dyn #s as #p::Interface>::descriptor().name),
                        quote!(<dyn #s as #p::Interface>::descriptor().id),
                    )
                } else {
                    let name = last.map(|seg| seg.ident.to_string()).unwrap_or_default();
                    let id = crate::hash::fnv1a64(name.as_bytes());
                    (quote!(#name), quote!(#id))
                }
            })
            .unzip();
        let pushes = self.t.methods.iter().map(|m| {
            let cfgs = &m.cfgs;
            let mname = m.ident.to_string();
            let mid = m.id;
            let sig = m.signature;
            let result = ast::type_text(&m.output);
            let oneway = m.flags.oneway;
            let idempotent = m.flags.idempotent;
            let roles = &m.flags.roles;
            let args = m.args.iter().map(|(n, t)| {
                let n = n.to_string();
                let t = ast::type_text(t);
                quote!(#p::ArgDescriptor { name: #n, ty: #t })
            });
            // A generic interface's descriptor is one for every
            // instantiation: it cannot describe the types' structure, and
            // its signature hashes the types as written.
            let (structure, signature) = if self.is_generic() {
                (
                    quote!(#p::Signature { args: ::std::vec::Vec::new(), result: ::std::string::String::new(), types: ::std::vec::Vec::new() }),
                    quote!(#sig),
                )
            } else {
                (self.signature_of(m), quote!(#p::signature_hash(&structure, #oneway)))
            };
            quote! {
                #(#cfgs)*
                {
                    let structure = #structure;
                    methods.push(#p::MethodDescriptor {
                        name: #mname,
                        id: #mid,
                        signature: #signature,
                        args: &[#(#args),*],
                        result: #result,
                        types: structure.types,
                        oneway: #oneway,
                        idempotent: #idempotent,
                        roles: &[#(#roles),*],
                    });
                }
            }
        });
        quote! {
            #[doc(hidden)]
            #[allow(non_snake_case)]
            fn #describe() -> &'static #p::InterfaceDescriptor {
                static D: ::std::sync::OnceLock<#p::InterfaceDescriptor> = ::std::sync::OnceLock::new();
                D.get_or_init(|| {
                    let mut methods: ::std::vec::Vec<#p::MethodDescriptor> = ::std::vec::Vec::new();
                    #(#pushes)*
                    let methods: &'static [#p::MethodDescriptor] = ::std::vec::Vec::leak(methods);
                    let supertraits: &'static [&'static str] =
                        ::std::vec::Vec::leak(::std::vec![#(#super_names),*]);
                    let supertrait_ids: &'static [u64] =
                        ::std::vec::Vec::leak(::std::vec![#(#super_ids),*]);
                    #p::InterfaceDescriptor {
                        name: #name,
                        id: #id,
                        methods,
                        supertraits,
                        supertrait_ids,
                        fingerprint: #p::fingerprint(methods),
                    }
                })
            }

            #p::inventory::submit! {
                #p::Registration(#describe)
            }
        }
    }
}
