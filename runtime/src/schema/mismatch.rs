//! Naming what differs when a call's signature word does not match.
//!
//! The server refuses the call before decoding anything, and says which
//! structure it has: its signature and the definition of each named type
//! ([`server_mismatch`]). The calling stub compares that with its own
//! ([`explain_mismatch`]) and names the types that differ. A caller that
//! is not a generated stub (a JSON call, a broker) still gets the server's
//! half, which names the method.
//!
//! The server's half ends the message as `[server: SIGNATURE; types
//! Name=DEFINITION | Name=DEFINITION]` (`docs/PROTOCOL.md`).

use crate::rmi::RemoteError;

use super::Signature;

const OPEN: &str = " [server: ";
const TYPES: &str = "; types ";

/// The fault text of a call to `interface::method` whose signature word is
/// not the server's: the server's structure is `sig`.
pub(crate) fn server_mismatch(interface: &str, method: &str, sig: &Signature) -> String {
    let defs: Vec<String> = sig
        .types
        .iter()
        .map(|d| format!("{}={d}", d.name))
        .collect();
    format!(
        "{interface}::{method} has another signature on the server; client and server \
         were built from different versions of the interface{OPEN}{sig}{TYPES}{}]",
        defs.join(" | ")
    )
}

/// The server's signature text and type definitions by name, from a
/// message of [`server_mismatch`].
fn parse(message: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let at = message.rfind(OPEN)?;
    let inner = message[at + OPEN.len()..].strip_suffix(']')?;
    let (sig, types) = inner.rsplit_once(TYPES)?;
    let mut defs = Vec::new();
    for item in types.split(" | ").filter(|s| !s.is_empty()) {
        defs.push(item.split_once('=')?);
    }
    Some((sig, defs))
}

/// `e`, and if it is the server's refusal of `interface::method` for a
/// signature that differs, the same error naming the types that differ
/// between `local()` (this side's signature) and the server's.
pub fn explain_mismatch(
    e: RemoteError,
    interface: &str,
    method: &str,
    local: impl FnOnce() -> Signature,
) -> RemoteError {
    let RemoteError::InterfaceMismatch(message) = &e else {
        return e;
    };
    let Some((server_sig, theirs)) = parse(message) else {
        return e;
    };
    let ours = local();
    let mut clauses = Vec::new();
    for d in &ours.types {
        let here = d.to_string();
        if let Some((_, there)) = theirs
            .iter()
            .find(|(name, there)| *name == d.name && **there != here)
        {
            clauses.push(format!(
                "the type `{}` differs between this side and the server \
                 (here: {here}; on the server: {there})",
                d.name
            ));
        }
    }
    for d in &ours.types {
        if !theirs.iter().any(|(name, _)| *name == d.name) {
            clauses.push(format!(
                "the type `{}` is not in the server's signature",
                d.name
            ));
        }
    }
    for (name, _) in &theirs {
        if !ours.types.iter().any(|d| d.name == *name) {
            clauses.push(format!(
                "the server's type `{name}` is not in this side's signature"
            ));
        }
    }
    if clauses.is_empty() {
        clauses.push(format!(
            "the argument or result types differ (here: {ours}; on the server: {server_sig})"
        ));
    }
    RemoteError::InterfaceMismatch(format!(
        "{interface}::{method}: {}; client and server were built from different versions of the interface",
        clauses.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Fields, Shape, TypeDef};

    fn parcel(fields: &[&str]) -> Signature {
        Signature {
            args: vec!["Parcel".into()],
            result: "Result<(), RemoteError>".into(),
            types: vec![TypeDef {
                name: "Parcel".into(),
                repr: Vec::new(),
                shape: Shape::Struct(Fields::named(fields.iter().map(|f| (*f, "u32".into())))),
            }],
        }
    }

    #[test]
    fn the_stub_names_the_type_that_differs() {
        let server = parcel(&["height", "width"]);
        let fault = RemoteError::InterfaceMismatch(server_mismatch("Shop", "send", &server));
        let e = explain_mismatch(fault, "Shop", "send", || parcel(&["width", "height"]));
        let RemoteError::InterfaceMismatch(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.starts_with("Shop::send: the type `Parcel` differs"),
            "{m}"
        );
        assert!(
            m.contains("struct Parcel { width: u32, height: u32 }"),
            "{m}"
        );
    }

    #[test]
    fn without_the_servers_half_the_message_stays() {
        let fault = RemoteError::InterfaceMismatch("Shop::send has another signature".into());
        let e = explain_mismatch(fault.clone(), "Shop", "send", || parcel(&["w"]));
        assert_eq!(e, fault);
    }

    #[test]
    fn primitive_changes_show_both_signatures() {
        let mut server = parcel(&["w"]);
        server.args = vec!["u64".into()];
        let mut ours = parcel(&["w"]);
        ours.args = vec!["u32".into()];
        let fault = RemoteError::InterfaceMismatch(server_mismatch("Shop", "send", &server));
        let RemoteError::InterfaceMismatch(m) = explain_mismatch(fault, "Shop", "send", || ours)
        else {
            panic!()
        };
        assert!(m.contains("here: (u32) -> "), "{m}");
        assert!(m.contains("on the server: (u64) -> "), "{m}");
    }
}
