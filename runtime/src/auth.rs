//! Who may connect, and who may call what.
//!
//! An [`Authenticator`] on the node ([`crate::NodeBuilder::authenticator`])
//! decides, during the handshake of every connection the node accepts,
//! who the dialer is: a [`Principal`], from the token it presented
//! ([`crate::NodeBuilder::credentials`]), the certificate it presented
//! under mutual TLS, or both. A refusal ends the handshake with a reason
//! the dialer reports. An [`Authorizer`]
//! ([`crate::NodeBuilder::authorizer`]) then decides every call from the
//! principal, the object, its interface and the method, read from the
//! frame header before any argument is decoded; a denied call is
//! [`crate::Fault::Unauthorized`] and the connection goes on.
//!
//! ```
//! use farcall_runtime::auth::{AccessRules, Tokens};
//!
//! let tokens = Tokens::new().allow("s3cret-for-alice", "alice").allow("s3cret-for-ops", "ops");
//! let rules = AccessRules::new()
//!     .allow("*", "Calculator", "add")
//!     .allow("ops", "Calculator", "*");
//! let node = farcall_runtime::Node::builder()
//!     .authenticator(tokens)
//!     .authorizer(rules)
//!     .build();
//! # drop(node);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::id::ObjectId;
use crate::rmi::{InterfaceDescriptor, MethodDescriptor};
#[cfg(feature = "tls")]
use crate::tls::PeerIdentity;
use crate::transport::PeerAddr;

/// Who is at the other end of a connection, as the node's
/// [`Authenticator`] named it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The name policies refer to ("alice", "billing-service").
    pub name: String,
}

impl Principal {
    /// A principal named `name`.
    pub fn new(name: impl Into<String>) -> Principal {
        Principal { name: name.into() }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What a dialer presented in the handshake.
#[non_exhaustive]
pub struct Presented<'a> {
    /// Where it dials from.
    pub addr: PeerAddr,
    /// The token of its hello, if any. Never log it.
    pub token: Option<&'a [u8]>,
    /// Its certificate's identity, under mutual TLS.
    #[cfg(feature = "tls")]
    pub identity: Option<&'a PeerIdentity>,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Presented");
        d.field("addr", &self.addr)
            .field("token", &self.token.map(|_| "<hidden>"));
        #[cfg(feature = "tls")]
        d.field("identity", &self.identity);
        d.finish()
    }
}

/// Decides who a dialer is, or refuses it.
pub trait Authenticator: Send + Sync + 'static {
    /// The principal of a dialer that presented `p`, or the reason it is
    /// refused (a sentence the dialer sees; never the token itself).
    fn authenticate(&self, p: &Presented<'_>) -> Result<Principal, String>;
}

/// One call, as an [`Authorizer`] sees it: nothing of its arguments.
#[non_exhaustive]
#[derive(Debug)]
pub struct Request<'a> {
    /// Who calls; `None` when the node has no authenticator (or the call
    /// comes on a connection this node dialed).
    pub principal: Option<&'a Principal>,
    /// The object called.
    pub object: ObjectId,
    /// Its interface, when it was served through `#[remote]`.
    pub interface: Option<&'static InterfaceDescriptor>,
    /// The method, when the interface knows the word.
    pub method: Option<&'static MethodDescriptor>,
    /// The method word of the frame.
    pub method_word: u64,
}

/// Decides every call before its arguments are decoded.
pub trait Authorizer: Send + Sync + 'static {
    /// `Ok` to let the call run, or the reason it is denied (a sentence
    /// the caller sees as `Unauthorized`).
    fn authorize(&self, request: &Request<'_>) -> Result<(), String>;
}

impl<F> Authorizer for F
where
    F: Fn(&Request<'_>) -> Result<(), String> + Send + Sync + 'static,
{
    fn authorize(&self, request: &Request<'_>) -> Result<(), String> {
        self(request)
    }
}

/// Static tokens: each names a principal. A dialer without a token, or
/// with one not in the table, is refused.
#[derive(Clone, Default)]
pub struct Tokens {
    table: Vec<(Vec<u8>, Principal)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.table.iter().map(|(_, p)| p.name.as_str()).collect();
        f.debug_struct("Tokens")
            .field("principals", &names)
            .finish()
    }
}

impl Tokens {
    /// An empty table (which refuses everyone).
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Admits dialers presenting `token` as `principal`.
    pub fn allow(mut self, token: impl AsRef<[u8]>, principal: impl Into<String>) -> Tokens {
        self.table
            .push((token.as_ref().to_vec(), Principal::new(principal)));
        self
    }
}

/// Equal contents, compared in time that depends only on the lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator for Tokens {
    fn authenticate(&self, p: &Presented<'_>) -> Result<Principal, String> {
        let Some(token) = p.token else {
            return Err("this node requires a token, and none was presented".into());
        };
        // Every entry is compared, so the time does not tell which matched.
        let mut found = None;
        for (t, principal) in &self.table {
            if same_secret(t, token) && found.is_none() {
                found = Some(principal.clone());
            }
        }
        found.ok_or_else(|| "the token presented is not accepted".into())
    }
}

/// Mutual TLS allow-list: a dialer whose certificate bears one of the
/// names (its common name or an alternative name) is admitted as a
/// principal of that name; any other is refused.
#[cfg(feature = "tls")]
#[derive(Clone, Debug, Default)]
pub struct CertificateNames {
    names: Vec<String>,
}

#[cfg(feature = "tls")]
impl CertificateNames {
    /// Admits certificates bearing any of `names`.
    pub fn allow<S: Into<String>>(names: impl IntoIterator<Item = S>) -> CertificateNames {
        CertificateNames {
            names: names.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(feature = "tls")]
impl Authenticator for CertificateNames {
    fn authenticate(&self, p: &Presented<'_>) -> Result<Principal, String> {
        let Some(id) = p.identity else {
            return Err("this node requires a client certificate, and none was presented".into());
        };
        self.names
            .iter()
            .find(|n| id.has_name(n))
            .map(|n| Principal::new(n.clone()))
            .ok_or_else(|| format!("the certificate of {id} is not on this node's allow-list"))
    }
}

/// The first of several authenticators that admits the dialer: tokens
/// for some, certificates for others. Refused when all refuse, with the
/// first one's reason.
#[derive(Clone, Default)]
pub struct AnyOf {
    each: Vec<Arc<dyn Authenticator>>,
}

impl fmt::Debug for AnyOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyOf")
            .field("authenticators", &self.each.len())
            .finish()
    }
}

impl AnyOf {
    /// None yet (which refuses everyone).
    pub fn new() -> AnyOf {
        AnyOf::default()
    }

    /// Tries `a` after the ones before it.
    pub fn or(mut self, a: impl Authenticator) -> AnyOf {
        self.each.push(Arc::new(a));
        self
    }
}

impl Authenticator for AnyOf {
    fn authenticate(&self, p: &Presented<'_>) -> Result<Principal, String> {
        let mut first = None;
        for a in &self.each {
            match a.authenticate(p) {
                Ok(principal) => return Ok(principal),
                Err(why) => {
                    first.get_or_insert(why);
                }
            }
        }
        Err(first.unwrap_or_else(|| "this node admits no one".into()))
    }
}

/// Allow rules over principal, interface and method names (`*` for any):
/// a call is allowed when a rule matches it, denied otherwise. A call
/// with no principal matches only rules for `*`; a call to an object not
/// served through `#[remote]` (no interface) matches only rules whose
/// interface and method are `*`.
#[derive(Clone, Debug, Default)]
pub struct AccessRules {
    rules: Vec<(String, String, String)>,
    by_principal: HashMap<String, Vec<usize>>,
}

impl AccessRules {
    /// No rules (every call denied).
    pub fn new() -> AccessRules {
        AccessRules::default()
    }

    /// Allows `principal` (or `*`) to call `method` (or `*`, or `@role`:
    /// every method `#[remote(role = "role")]` marks) of `interface` (or
    /// `*`; the name `#[remote]` gives the trait).
    pub fn allow(mut self, principal: &str, interface: &str, method: &str) -> AccessRules {
        self.by_principal
            .entry(principal.to_owned())
            .or_default()
            .push(self.rules.len());
        self.rules.push((
            principal.to_owned(),
            interface.to_owned(),
            method.to_owned(),
        ));
        self
    }

    fn matches(&self, rule: usize, r: &Request<'_>) -> bool {
        let (_, interface, method) = &self.rules[rule];
        let name_ok = |pattern: &str, name: Option<&str>| pattern == "*" || name == Some(pattern);
        let method_ok = match method.strip_prefix('@') {
            Some(role) => r.method.is_some_and(|m| m.roles.contains(&role)),
            None => name_ok(method, r.method.map(|m| m.name)),
        };
        name_ok(interface, r.interface.map(|i| i.name)) && method_ok
    }
}

impl Authorizer for AccessRules {
    fn authorize(&self, r: &Request<'_>) -> Result<(), String> {
        let mine = r
            .principal
            .and_then(|p| self.by_principal.get(&p.name))
            .into_iter()
            .flatten();
        let anyone = self.by_principal.get("*").into_iter().flatten();
        if mine.chain(anyone).any(|&i| self.matches(i, r)) {
            return Ok(());
        }
        let who = r.principal.map_or_else(
            || "an unauthenticated caller".to_owned(),
            |p| format!("`{p}`"),
        );
        Err(match (r.interface, r.method) {
            (Some(i), Some(m)) => format!("{who} may not call `{}::{}`", i.name, m.name),
            (Some(i), None) => format!("{who} may not call this method of `{}`", i.name),
            _ => format!("{who} may not call this object"),
        })
    }
}

/// An authenticator or authorizer installed on a node builder: cloned
/// with it, shown as what it is not (its tables stay out of logs).
pub(crate) struct Installed<T: ?Sized>(pub(crate) Arc<T>);

impl<T: ?Sized> Clone for Installed<T> {
    fn clone(&self) -> Self {
        Installed(self.0.clone())
    }
}

impl<T: ?Sized> fmt::Debug for Installed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<installed>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_admit_their_principal_and_refuse_without_echoing() {
        let t = Tokens::new().allow("alpha", "alice").allow("beta", "bob");
        let p = |tok: Option<&'static [u8]>| Presented {
            addr: PeerAddr::Mem,
            token: tok,
            #[cfg(feature = "tls")]
            identity: None,
        };
        assert_eq!(t.authenticate(&p(Some(b"beta"))).unwrap().name, "bob");
        let why = t.authenticate(&p(Some(b"gamma"))).unwrap_err();
        assert!(!why.contains("gamma"), "{why}");
        assert!(t.authenticate(&p(None)).unwrap_err().contains("none"));
        assert!(!format!("{t:?}").contains("alpha"), "Debug hides tokens");
        assert!(
            same_secret(b"ab", b"ab") && !same_secret(b"ab", b"ac") && !same_secret(b"a", b"ab")
        );
    }
}
