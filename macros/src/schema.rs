//! `#[derive(Schema)]`: a type's structure as serde puts it on the wire.
//!
//! serde's attributes are read, not re-implemented: `rename`,
//! `rename_all`, `rename_all_fields` and `skip` change the names and the
//! fields described; `flatten` and the one-way skips (`skip_serializing`,
//! `skip_serializing_if`, `skip_deserializing`) mark the field (`..name`,
//! `name?`); `tag`, `content` and `untagged` are kept as the
//! representation; `transparent` describes the inner field. A skipped
//! variant keeps its place (`#[serde(skip)] Name`): serde numbers the
//! variants as written. `from`, `into`, `try_from` and `remote` put
//! another type on the wire, which the derive cannot see: they are refused
//! unless `#[schema(as = "Type")]` names that type; on a field, the same
//! attribute describes a field whose `serde(with)` changes its encoding.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, LitStr, Path};

/// Expands `#[derive(Schema)]`.
pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = crate::valid::Errors::default();
    let container = Container::read(&input, &mut errors);
    let krate = &container.krate;
    let p = quote!(#krate::__private);
    let shape = match &input.data {
        _ if container.as_type.is_some() => {
            let ty = &container.as_type;
            Body::Transparent(quote!(#ty))
        }
        Data::Struct(s) => {
            if container.transparent {
                let inner = s.fields.iter().find_map(|f| {
                    let attrs = FieldAttrs::read(&f.attrs, true, &mut errors);
                    (!attrs.skip).then(|| attrs.as_type.unwrap_or_else(|| f.ty.clone()))
                });
                match inner {
                    Some(ty) => Body::Transparent(quote!(#ty)),
                    None => {
                        errors.spanned(
                            &input.ident,
                            "a transparent struct has one field that is not skipped",
                        );
                        Body::Transparent(quote!(()))
                    }
                }
            } else {
                let fields = fields(&p, &s.fields, container.rename_all.as_deref(), &mut errors);
                Body::Shape(quote!(#p::Shape::Struct(#fields)))
            }
        }
        Data::Enum(e) => {
            let mut variants = Vec::new();
            for v in &e.variants {
                let attrs = FieldAttrs::read(&v.attrs, false, &mut errors);
                let name = attrs.rename.unwrap_or_else(|| {
                    let raw = v.ident.unraw().to_string();
                    match &container.rename_all {
                        Some(rule) => rename_variant(rule, &raw),
                        None => raw,
                    }
                });
                if attrs.skip {
                    // Not on the wire, but serde counts it when it numbers
                    // the variants that follow.
                    let name = format!("#[serde(skip)] {name}");
                    let name = string(&name);
                    variants.push(quote!(#p::Variant { name: #name, fields: #p::Fields::Unit }));
                    continue;
                }
                let name = attrs.mark.apply(name);
                let rule = attrs
                    .rename_all
                    .or_else(|| container.rename_all_fields.clone());
                let fields = fields(&p, &v.fields, rule.as_deref(), &mut errors);
                let name = string(&name);
                variants.push(quote!(#p::Variant { name: #name, fields: #fields }));
            }
            Body::Shape(quote!(#p::Shape::Enum(::std::vec![#(#variants),*])))
        }
        Data::Union(u) => {
            errors.spanned(
                u.union_token,
                "farcall::Schema describes structs and enums; serde does not derive unions",
            );
            Body::Transparent(quote!(()))
        }
    };
    errors.finish()?;

    let mut generics = input.generics.clone();
    let params: Vec<_> = generics.type_params().map(|t| t.ident.clone()).collect();
    if !params.is_empty() {
        let wc = generics.make_where_clause();
        for t in &params {
            wc.predicates.push(syn::parse_quote!(#t: #p::Schema));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let ident = &input.ident;
    let types = syn::Ident::new("__farcall_types", proc_macro2::Span::mixed_site());
    let body = match shape {
        Body::Transparent(ty) => quote!(#types.of::<#ty>()),
        Body::Shape(shape) => {
            let base = container
                .name
                .clone()
                .unwrap_or_else(|| ident.unraw().to_string());
            let args: Vec<TokenStream> = input
                .generics
                .params
                .iter()
                .filter_map(|g| match g {
                    syn::GenericParam::Type(t) => {
                        let t = &t.ident;
                        Some(quote!(#types.of::<#t>()))
                    }
                    syn::GenericParam::Const(c) => {
                        let c = &c.ident;
                        Some(quote!(::std::string::ToString::to_string(&#c)))
                    }
                    syn::GenericParam::Lifetime(_) => None,
                })
                .collect();
            let name = if args.is_empty() {
                string(&base)
            } else {
                quote!({
                    let args: ::std::vec::Vec<::std::string::String> = ::std::vec![#(#args),*];
                    ::std::format!("{}<{}>", #base, args.join(", "))
                })
            };
            let repr = container.repr.iter().map(|r| string(r));
            quote! {
                let name = #name;
                #types.define::<Self>(
                    name,
                    ::std::vec![#(#repr),*],
                    |#types: &mut #p::Types| #shape,
                )
            }
        }
    };
    Ok(quote! {
        impl #impl_generics #p::Schema for #ident #ty_generics #where_clause {
            fn describe(#types: &mut #p::Types) -> ::std::string::String {
                #body
            }
        }
    })
}

/// A `String` made from the literal `text`, without the prelude.
fn string(text: &str) -> TokenStream {
    quote!(<::std::string::String as ::core::convert::From<&str>>::from(#text))
}

enum Body {
    /// `#[serde(transparent)]`: the inner field's type.
    Transparent(TokenStream),
    /// A `Shape` expression.
    Shape(TokenStream),
}

/// The `Fields` expression of a struct or a variant.
fn fields(
    p: &TokenStream,
    fields: &Fields,
    rename_all: Option<&str>,
    errors: &mut crate::valid::Errors,
) -> TokenStream {
    let types = syn::Ident::new("__farcall_types", proc_macro2::Span::mixed_site());
    match fields {
        Fields::Named(named) => {
            let items = named.named.iter().filter_map(|f| {
                let attrs = FieldAttrs::read(&f.attrs, true, errors);
                if attrs.skip {
                    return None;
                }
                let ident = f.ident.as_ref()?;
                let name = attrs.rename.unwrap_or_else(|| {
                    let raw = ident.unraw().to_string();
                    match rename_all {
                        Some(rule) => rename_field(rule, &raw),
                        None => raw,
                    }
                });
                let name = attrs.mark.apply(name);
                let ty = attrs.as_type.unwrap_or_else(|| f.ty.clone());
                let name = string(&name);
                Some(quote!(#p::Field { name: #name, ty: #types.of::<#ty>() }))
            });
            let items: Vec<_> = items.collect();
            quote!(#p::Fields::Named(::std::vec![#(#items),*]))
        }
        Fields::Unnamed(unnamed) => {
            let items: Vec<_> = unnamed
                .unnamed
                .iter()
                .filter_map(|f| {
                    let attrs = FieldAttrs::read(&f.attrs, true, errors);
                    let ty = attrs.as_type.unwrap_or_else(|| f.ty.clone());
                    (!attrs.skip).then(|| quote!(#types.of::<#ty>()))
                })
                .collect();
            quote!(#p::Fields::Unnamed(::std::vec![#(#items),*]))
        }
        Fields::Unit => quote!(#p::Fields::Unit),
    }
}

/// What the container's attributes say.
struct Container {
    krate: Path,
    /// `#[serde(rename = "...")]`.
    name: Option<String>,
    rename_all: Option<String>,
    rename_all_fields: Option<String>,
    /// `tag = "t"`, `content = "c"`, `untagged`, as written.
    repr: Vec<String>,
    transparent: bool,
    /// `#[schema(as = "Type")]`: the type on the wire.
    as_type: Option<syn::Type>,
}

impl Container {
    fn read(input: &DeriveInput, errors: &mut crate::valid::Errors) -> Container {
        let mut c = Container {
            krate: syn::parse_quote!(::farcall),
            name: None,
            rename_all: None,
            rename_all_fields: None,
            repr: Vec::new(),
            transparent: false,
            as_type: None,
        };
        // `from`, `into`, ...: refused after every attribute is read, unless
        // `#[schema(as)]` names the type they put on the wire.
        let mut foreign: Vec<syn::Error> = Vec::new();
        for attr in &input.attrs {
            if attr.path().is_ident("schema") {
                let r = attr.parse_nested_meta(|m| {
                    if m.path.is_ident("crate") {
                        let lit: LitStr = m.value()?.parse()?;
                        c.krate = lit.parse()?;
                        Ok(())
                    } else if m.path.is_ident("as") {
                        let lit: LitStr = m.value()?.parse()?;
                        c.as_type = Some(lit.parse()?);
                        Ok(())
                    } else {
                        Err(m.error(
                            "unknown argument; #[schema] on a type takes `crate = \"path\"` or `as = \"Type\"`",
                        ))
                    }
                });
                if let Err(e) = r {
                    errors.push(e);
                }
            } else if attr.path().is_ident("serde") {
                let r = attr.parse_nested_meta(|m| {
                    let key = m.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                    match key.as_str() {
                        "rename" => c.name = one_name(&m)?,
                        "rename_all" => c.rename_all = one_name(&m)?,
                        "rename_all_fields" => c.rename_all_fields = one_name(&m)?,
                        "tag" | "content" => {
                            let lit: LitStr = m.value()?.parse()?;
                            c.repr.push(format!("{key} = {:?}", lit.value()));
                        }
                        "untagged" => c.repr.push(key),
                        "transparent" => c.transparent = true,
                        "from" | "into" | "try_from" | "remote" => {
                            foreign.push(m.error(format!(
                                "#[derive(farcall::Schema)] cannot see the type #[serde({key})] puts on the wire; \
                                 name it with #[schema(as = \"Type\")], or implement `farcall::Schema` by hand"
                            )));
                            skip_value(&m)?;
                        }
                        _ => skip_value(&m)?,
                    }
                    Ok(())
                });
                if let Err(e) = r {
                    errors.push(e);
                }
            }
        }
        if c.as_type.is_none() {
            for e in foreign {
                errors.push(e);
            }
        }
        if let Some(rule) = c
            .rename_all
            .iter()
            .chain(&c.rename_all_fields)
            .find(|r| !RULES.contains(&r.as_str()))
        {
            errors.spanned(
                &input.ident,
                &format!(
                    "unknown rename rule `{rule}`; serde knows {}",
                    RULES.join(", ")
                ),
            );
        }
        c
    }
}

/// How serde marks a field (or a variant) that it leaves out one way.
#[derive(Default, Clone, Copy)]
struct Mark {
    flatten: bool,
    one_way: bool,
}

impl Mark {
    /// `..name` for a flattened field, `name?` for a one-way skip.
    fn apply(self, name: String) -> String {
        let name = if self.flatten {
            format!("..{name}")
        } else {
            name
        };
        if self.one_way {
            format!("{name}?")
        } else {
            name
        }
    }
}

/// What a field's or a variant's serde attributes say.
#[derive(Default)]
struct FieldAttrs {
    rename: Option<String>,
    rename_all: Option<String>,
    skip: bool,
    mark: Mark,
    /// `#[schema(as = "Type")]` (fields only).
    as_type: Option<syn::Type>,
}

impl FieldAttrs {
    /// Reads `attrs`; `field` says whether `#[schema(as)]` may be there.
    fn read(
        attrs: &[syn::Attribute],
        field: bool,
        errors: &mut crate::valid::Errors,
    ) -> FieldAttrs {
        let mut out = FieldAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("schema")) {
            let r = attr.parse_nested_meta(|m| {
                if field && m.path.is_ident("as") {
                    let lit: LitStr = m.value()?.parse()?;
                    out.as_type = Some(lit.parse()?);
                    Ok(())
                } else if field {
                    Err(m.error("unknown argument; #[schema] on a field takes `as = \"Type\"`"))
                } else {
                    Err(m.error(
                        "#[schema] takes no argument on a variant; put it on the variant's fields",
                    ))
                }
            });
            if let Err(e) = r {
                errors.push(e);
            }
        }
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let r = attr.parse_nested_meta(|m| {
                let key = m
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                match key.as_str() {
                    "rename" => out.rename = one_name(&m)?,
                    "rename_all" => out.rename_all = one_name(&m)?,
                    "skip" => out.skip = true,
                    "flatten" => out.mark.flatten = true,
                    "skip_serializing" | "skip_deserializing" | "skip_serializing_if" => {
                        out.mark.one_way = true;
                        skip_value(&m)?;
                    }
                    _ => skip_value(&m)?,
                }
                Ok(())
            });
            if let Err(e) = r {
                errors.push(e);
            }
        }
        out
    }
}

/// `key = "name"`, or `key(serialize = "a", deserialize = "b")` with one
/// name or the same twice: the schema has one name per field.
fn one_name(m: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<String>> {
    if m.input.peek(syn::Token![=]) {
        let lit: LitStr = m.value()?.parse()?;
        return Ok(Some(lit.value()));
    }
    let mut names: Vec<String> = Vec::new();
    m.parse_nested_meta(|inner| {
        let lit: LitStr = inner.value()?.parse()?;
        names.push(lit.value());
        Ok(())
    })?;
    names.dedup();
    if names.len() > 1 {
        return Err(m.error(
            "farcall::Schema describes one name per item; a serialize name that differs from the deserialize name cannot cross the wire both ways",
        ));
    }
    Ok(names.pop())
}

/// Consumes whatever follows an attribute the schema does not need:
/// `= value`, `(...)`, or nothing.
fn skip_value(m: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if m.input.peek(syn::Token![=]) {
        let _: syn::Expr = m.value()?.parse()?;
    } else if m.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in m.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

const RULES: &[&str] = &[
    "lowercase",
    "UPPERCASE",
    "PascalCase",
    "camelCase",
    "snake_case",
    "SCREAMING_SNAKE_CASE",
    "kebab-case",
    "SCREAMING-KEBAB-CASE",
];

/// serde's `rename_all` on a variant name (written in PascalCase).
fn rename_variant(rule: &str, v: &str) -> String {
    let snake = || {
        let mut s = String::new();
        for (i, ch) in v.char_indices() {
            if i > 0 && ch.is_uppercase() {
                s.push('_');
            }
            s.push(ch.to_ascii_lowercase());
        }
        s
    };
    match rule {
        "lowercase" => v.to_ascii_lowercase(),
        "UPPERCASE" => v.to_ascii_uppercase(),
        "camelCase" => {
            let mut c = v.chars();
            c.next().map_or_else(String::new, |f| {
                f.to_ascii_lowercase().to_string() + c.as_str()
            })
        }
        "snake_case" => snake(),
        "SCREAMING_SNAKE_CASE" => snake().to_ascii_uppercase(),
        "kebab-case" => snake().replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => snake().to_ascii_uppercase().replace('_', "-"),
        _ => v.to_owned(),
    }
}

/// serde's `rename_all` on a field name (written in snake_case).
fn rename_field(rule: &str, f: &str) -> String {
    let pascal = || {
        let mut s = String::new();
        let mut up = true;
        for ch in f.chars() {
            if ch == '_' {
                up = true;
            } else if up {
                s.push(ch.to_ascii_uppercase());
                up = false;
            } else {
                s.push(ch);
            }
        }
        s
    };
    match rule {
        "UPPERCASE" | "SCREAMING_SNAKE_CASE" => f.to_ascii_uppercase(),
        "PascalCase" => pascal(),
        "camelCase" => {
            let p = pascal();
            let mut c = p.chars();
            c.next().map_or_else(String::new, |f| {
                f.to_ascii_lowercase().to_string() + c.as_str()
            })
        }
        "kebab-case" => f.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => f.to_ascii_uppercase().replace('_', "-"),
        _ => f.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rules_follow_serde() {
        assert_eq!(rename_variant("snake_case", "VeryTasty"), "very_tasty");
        assert_eq!(rename_variant("kebab-case", "VeryTasty"), "very-tasty");
        assert_eq!(rename_variant("camelCase", "VeryTasty"), "veryTasty");
        assert_eq!(rename_field("camelCase", "very_tasty"), "veryTasty");
        assert_eq!(rename_field("PascalCase", "very_tasty"), "VeryTasty");
        assert_eq!(
            rename_field("SCREAMING-KEBAB-CASE", "very_tasty"),
            "VERY-TASTY"
        );
    }
}
