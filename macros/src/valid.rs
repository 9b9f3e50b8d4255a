//! Validation: every way a trait can be unfit for `#[remote]`, reported
//! together, each error pointing at the user's tokens.

use syn::{
    FnArg, GenericArgument, GenericParam, ItemTrait, Pat, PathArguments, ReturnType, TraitItem,
    Type,
};

/// Inherent methods of the generated stub: a trait method may not share
/// their names (the stub's inherent method would silently win).
pub(crate) const RESERVED: &[&str] = &["new", "core", "with_deadline", "object_id"];

/// Collects errors; `finish` returns them combined.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    pub(crate) fn spanned(&mut self, tokens: impl quote::ToTokens, msg: &str) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Checks a trait; every problem is reported.
pub(crate) fn check_trait(t: &ItemTrait, errors: &mut Errors) {
    if let Some(u) = &t.unsafety {
        errors.spanned(u, "a remote trait cannot be `unsafe`");
    }
    if let Some(a) = &t.auto_token {
        errors.spanned(a, "a remote trait cannot be an auto trait");
    }
    for p in &t.generics.params {
        match p {
            GenericParam::Type(_) => {}
            GenericParam::Lifetime(l) => errors.spanned(
                l,
                "remote traits cannot have lifetime parameters: what crosses the network is owned",
            ),
            GenericParam::Const(c) => {
                errors.spanned(c, "remote traits cannot have const parameters")
            }
        }
    }
    for item in &t.items {
        match item {
            TraitItem::Fn(f) => check_method(f, errors),
            TraitItem::Type(ty) => errors.spanned(
                &ty.ident,
                "remote traits hold only methods: associated types cannot cross the network",
            ),
            TraitItem::Const(c) => errors.spanned(
                &c.ident,
                "remote traits hold only methods: associated constants cannot cross the network",
            ),
            other => errors.spanned(other, "remote traits hold only methods"),
        }
    }
}

fn check_method(f: &syn::TraitItemFn, errors: &mut Errors) {
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            "remote methods must be `async fn`: a call across the network is asynchronous",
        );
    }
    if let Some(c) = &sig.constness {
        errors.spanned(c, "remote methods cannot be `const`");
    }
    if let Some(u) = &sig.unsafety {
        errors.spanned(u, "remote methods cannot be `unsafe`");
    }
    if let Some(a) = &sig.abi {
        errors.spanned(a, "remote methods cannot have an ABI");
    }
    if let Some(v) = &sig.variadic {
        errors.spanned(v, "remote methods cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(
            &sig.generics,
            "remote methods cannot have generic parameters: a stub must know every type it sends \
             (put type parameters on the trait instead)",
        );
    }
    let name = sig.ident.to_string();
    if RESERVED.contains(&name.as_str()) {
        errors.spanned(
            &sig.ident,
            &format!(
                "a remote method cannot be named `{name}`: the generated stub has an inherent method of that name"
            ),
        );
    }
    if name.starts_with("__farcall") {
        errors.spanned(
            &sig.ident,
            "names starting with `__farcall` are reserved for generated items",
        );
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => {
            if r.colon_token.is_some() {
                errors.spanned(r, "remote methods take `&self`, not a typed `self`");
            } else if r.reference.is_none() {
                errors.spanned(
                    r,
                    "remote methods take `&self`, not `self` by value: the object stays where it lives",
                );
            } else if r.mutability.is_some() {
                errors.spanned(
                    r,
                    "remote methods take `&self`, not `&mut self`: a remote object is shared by all its callers \
                     (use interior mutability)",
                );
            }
        }
        _ => errors.spanned(
            &sig.ident,
            "remote methods take `&self` as their first argument (associated functions cannot be called remotely)",
        ),
    }
    for arg in sig.inputs.iter().skip(1) {
        let FnArg::Typed(pt) = arg else {
            errors.spanned(arg, "`self` may only come first");
            continue;
        };
        match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {}
            other => errors.spanned(
                other,
                "remote method arguments need plain names (`name: Type`)",
            ),
        }
        check_arg_type(&pt.ty, errors);
        check_no_self(&pt.ty, errors);
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_no_self(ty, errors);
    }
    match &sig.output {
        ReturnType::Default => errors.spanned(
            sig,
            "remote methods must return `Result<T, E>` where `E: From<farcall::RemoteError>`: a remote call can fail",
        ),
        ReturnType::Type(_, ty) => {
            if result_types(ty).is_none() {
                errors.spanned(
                    ty,
                    "remote methods must return `Result<T, E>` where `E: From<farcall::RemoteError>`: a remote call can fail",
                );
            }
        }
    }
}

/// The `T` and `E` of a `Result<T, E>` return type.
pub(crate) fn result_types(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let ok = types.next()?;
    let err = types.next()?;
    types.next().is_none().then_some((ok, err))
}

fn check_arg_type(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::ImplTrait(i) => errors.spanned(
            i,
            "remote method arguments cannot be `impl Trait`: the stub must know the concrete type it sends",
        ),
        Type::Reference(r) => errors.spanned(
            r,
            "remote method arguments cannot be references: arguments cross the network by value (pass an owned type)",
        ),
        Type::Ptr(p) => errors.spanned(p, "remote method arguments cannot be raw pointers"),
        Type::BareFn(f) => errors.spanned(f, "remote method arguments cannot be functions"),
        Type::TraitObject(t) => errors.spanned(
            t,
            "remote method arguments cannot be trait objects (pass a farcall::Remote<dyn Trait> instead)",
        ),
        Type::Paren(p) => check_arg_type(&p.elem, errors),
        Type::Group(g) => check_arg_type(&g.elem, errors),
        Type::Array(a) => check_arg_type(&a.elem, errors),
        Type::Slice(s) => check_arg_type(&s.elem, errors),
        Type::Tuple(t) => t.elems.iter().for_each(|e| check_arg_type(e, errors)),
        Type::Path(p) => {
            for seg in &p.path.segments {
                // `Remote<dyn Trait>` and `Stream<T>` are how objects and
                // streams cross the network: the `dyn` inside is intended.
                if seg.ident == "Remote" {
                    continue;
                }
                if let PathArguments::AngleBracketed(a) = &seg.arguments {
                    for g in &a.args {
                        if let GenericArgument::Type(t) = g {
                            check_arg_type(t, errors);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// `Self` in an argument or result type: each side would mean another
/// type by it, and the trait would not be usable as `dyn Trait`.
fn check_no_self(ty: &Type, errors: &mut Errors) {
    fn find(tokens: proc_macro2::TokenStream) -> Option<proc_macro2::Ident> {
        tokens.into_iter().find_map(|t| match t {
            proc_macro2::TokenTree::Ident(i) if i == "Self" => Some(i),
            proc_macro2::TokenTree::Group(g) => find(g.stream()),
            _ => None,
        })
    }
    if let Some(s) = find(quote::ToTokens::to_token_stream(ty)) {
        errors.spanned(
            s,
            "remote method signatures cannot name `Self`: the trait is used as `dyn Trait`, \
             and the caller does not know the object's type (name a concrete type)",
        );
    }
}
