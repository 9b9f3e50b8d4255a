//! Who may publish and subscribe on which subjects, and send to and
//! consume from which queues: permissions by principal, as NATS has them.

use std::collections::HashMap;

use farcall_runtime::auth::Principal;
use serde::{Deserialize, Serialize};

use crate::error::BrokerError;

/// What one principal may do on an exposed broker. Each list holds
/// subject patterns (`prices.*`, `prices.>`; queues are named the same
/// way), and an empty list allows nothing of the kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Allowed {
    /// Subjects it may publish on.
    pub publish: Vec<String>,
    /// Patterns it may subscribe to: a pattern is allowed when one of
    /// these covers every subject it could match.
    pub subscribe: Vec<String>,
    /// Queues it may send to.
    pub send: Vec<String>,
    /// Queues it may consume from (and acknowledge there).
    pub consume: Vec<String>,
}

/// Per-principal permissions of a broker exposed on a node
/// ([`Broker::expose_with`](crate::Broker::expose_with)). The principal is
/// the one the node's authenticator named the caller (see
/// `farcall::auth`); `*` holds what every caller may do, authenticated or
/// not. Calls from the broker's own process are not checked; statistics
/// and `info` are open.
///
/// It reads from JSON, as `farcall broker serve --policy FILE` does:
///
/// ```
/// use farcall_broker::Permissions;
///
/// let p: Permissions = serde_json::from_str(r#"{
///     "principals": {
///         "pricing": { "publish": ["prices.>"] },
///         "*": { "subscribe": ["prices.>"], "send": ["orders"] },
///         "warehouse": { "consume": ["orders"] }
///     }
/// }"#).unwrap();
/// # drop(p);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Permissions {
    /// What each principal (or `*`) may do.
    pub principals: HashMap<String, Allowed>,
}

/// One kind of broker operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Publish,
    Subscribe,
    Send,
    Consume,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Publish => "publish on",
            Op::Subscribe => "subscribe to",
            Op::Send => "send to",
            Op::Consume => "consume from",
        }
    }
}

impl Permissions {
    /// None: every operation over a connection is refused.
    pub fn new() -> Permissions {
        Permissions::default()
    }

    /// Lets `principal` (or `*`) do what `allowed` says, added to what it
    /// may already.
    pub fn allow(mut self, principal: &str, allowed: Allowed) -> Permissions {
        let entry = self.principals.entry(principal.to_owned()).or_default();
        entry.publish.extend(allowed.publish);
        entry.subscribe.extend(allowed.subscribe);
        entry.send.extend(allowed.send);
        entry.consume.extend(allowed.consume);
        self
    }

    /// Whether `who` may do `op` on `name` (a subject, a pattern or a
    /// queue); `Unauthorized` saying who and what otherwise.
    pub(crate) fn check(
        &self,
        who: Option<&Principal>,
        op: Op,
        name: &str,
    ) -> Result<(), BrokerError> {
        let lists = who
            .and_then(|p| self.principals.get(&p.name))
            .into_iter()
            .chain(self.principals.get("*"));
        for allowed in lists {
            let patterns = match op {
                Op::Publish => &allowed.publish,
                Op::Subscribe => &allowed.subscribe,
                Op::Send => &allowed.send,
                Op::Consume => &allowed.consume,
            };
            if patterns.iter().any(|p| covers(p, name)) {
                return Ok(());
            }
        }
        let who = who.map_or_else(
            || "an unauthenticated caller".to_owned(),
            |p| format!("`{p}`"),
        );
        Err(BrokerError::Unauthorized(format!(
            "{who} may not {} `{name}`",
            op.verb()
        )))
    }
}

/// Whether the pattern `allowed` covers `asked` (a subject, or a pattern
/// whose every match `allowed` matches too), token by token: `>` covers
/// the rest, `*` one token of any kind but `>`, a literal only itself.
fn covers(allowed: &str, asked: &str) -> bool {
    let mut a = allowed.split('.');
    let mut b = asked.split('.');
    loop {
        match (a.next(), b.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(x), Some(y)) if x == y && x != "*" && x != ">" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_what_they_should() {
        assert!(covers("prices.>", "prices.eu.acme"));
        assert!(covers("prices.>", "prices.*"));
        assert!(covers("prices.>", "prices.>"));
        assert!(!covers("prices.>", "prices"));
        assert!(covers("prices.*", "prices.eu"));
        assert!(covers("prices.*", "prices.*"));
        assert!(!covers("prices.*", "prices.>"));
        assert!(!covers("prices.*", "prices.eu.acme"));
        assert!(covers("orders", "orders"));
        assert!(!covers("orders", "orders.x"));
        assert!(!covers("orders.eu", "orders.*"));
    }

    #[test]
    fn principals_and_everyone() {
        let p = Permissions::new()
            .allow(
                "pricing",
                Allowed {
                    publish: vec!["prices.>".into()],
                    ..Allowed::default()
                },
            )
            .allow(
                "*",
                Allowed {
                    subscribe: vec!["prices.>".into()],
                    ..Allowed::default()
                },
            );
        let pricing = Principal::new("pricing");
        assert!(p.check(Some(&pricing), Op::Publish, "prices.eu").is_ok());
        assert!(p.check(Some(&pricing), Op::Subscribe, "prices.*").is_ok());
        assert!(p.check(None, Op::Subscribe, "prices.eu").is_ok());
        match p.check(None, Op::Publish, "prices.eu") {
            Err(BrokerError::Unauthorized(why)) => {
                assert_eq!(
                    why,
                    "an unauthenticated caller may not publish on `prices.eu`"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
