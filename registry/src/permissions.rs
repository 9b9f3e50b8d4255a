//! Who may write, and read, which names: permissions by principal and
//! name prefix, on top of the directory's write access.

use std::fmt;

use farcall_runtime::auth::Principal;

/// Permissions on a directory's names, by principal (as the node's
/// authenticator names callers; see `farcall::auth`) and name prefix. Set
/// with [`set_permissions`](crate::set_permissions).
///
/// A write (bind, rebind, add, unbind, remove) over a connection needs a
/// write permission whose prefix starts the name; reads are open unless
/// [`Permissions::restrict_reads`] is set, then lookup, describe, list and
/// watch need a read (or write) permission covering the name or prefix
/// asked, and find one covering every name (`""`). A caller with no
/// permission of the kind at all is refused from the method word alone,
/// before anything is decoded; the others after their first argument
/// (the name) only. Calls from the directory's own node are not checked.
///
/// ```
/// use farcall_registry::Permissions;
///
/// let p = Permissions::new()
///     .write("shop-service", "shop/")
///     .write("ops", "")
///     .read("auditor", "")
///     .restrict_reads();
/// # drop(p);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    writes: Vec<(String, String)>,
    reads: Vec<(String, String)>,
    restricted_reads: bool,
}

/// What a call asks of the permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    Write,
    Read,
}

impl Permissions {
    /// None: every write over a connection is refused; reads are open.
    pub fn new() -> Permissions {
        Permissions::default()
    }

    /// Lets `principal` (or `*`, anyone authenticated) write names that
    /// start with `prefix` (`""`: every name). A write permission lets it
    /// read there too.
    pub fn write(mut self, principal: &str, prefix: &str) -> Permissions {
        self.writes.push((principal.to_owned(), prefix.to_owned()));
        self
    }

    /// Lets `principal` (or `*`) read names that start with `prefix`, once
    /// reads are restricted.
    pub fn read(mut self, principal: &str, prefix: &str) -> Permissions {
        self.reads.push((principal.to_owned(), prefix.to_owned()));
        self
    }

    /// Reads need a permission too (by default they are open).
    pub fn restrict_reads(mut self) -> Permissions {
        self.restricted_reads = true;
        self
    }

    fn prefixes<'a>(
        &'a self,
        who: Option<&'a Principal>,
        want: Want,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let reads = (want == Want::Read).then_some(self.reads.iter());
        self.writes
            .iter()
            .chain(reads.into_iter().flatten())
            .filter(move |(p, _)| {
                who.is_some() && (p == "*" || Some(p.as_str()) == who.map(|w| w.name.as_str()))
            })
            .map(|(_, prefix)| prefix.as_str())
    }

    /// Whether the kind of call is checked at all.
    pub(crate) fn checks(&self, want: Want) -> bool {
        want == Want::Write || self.restricted_reads
    }

    /// The check made from the method word alone: may `who` make calls of
    /// this kind anywhere?
    pub(crate) fn may_at_all(&self, who: Option<&Principal>, want: Want) -> Result<(), String> {
        if !self.checks(want) || self.prefixes(who, want).next().is_some() {
            return Ok(());
        }
        Err(format!(
            "{} may not {} in this directory",
            Named(who),
            verb(want)
        ))
    }

    /// May `who` make a call of this kind on `name` (a name, or the prefix
    /// of a list or a watch)?
    pub(crate) fn may(
        &self,
        who: Option<&Principal>,
        want: Want,
        name: &str,
    ) -> Result<(), String> {
        if !self.checks(want) || self.prefixes(who, want).any(|p| name.starts_with(p)) {
            return Ok(());
        }
        Err(format!(
            "{} may not {} under `{name}`",
            Named(who),
            verb(want)
        ))
    }
}

fn verb(want: Want) -> &'static str {
    match want {
        Want::Write => "write",
        Want::Read => "read",
    }
}

/// A principal as a sentence names it.
struct Named<'a>(Option<&'a Principal>);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "`{p}`"),
            None => f.write_str("an unauthenticated caller"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_by_principal() {
        let p = Permissions::new()
            .write("shop", "shop/")
            .read("audit", "")
            .restrict_reads();
        let shop = Principal::new("shop");
        let audit = Principal::new("audit");
        assert!(p.may(Some(&shop), Want::Write, "shop/cart").is_ok());
        assert!(p.may(Some(&shop), Want::Read, "shop/cart").is_ok());
        let why = p.may(Some(&shop), Want::Write, "billing/x").unwrap_err();
        assert_eq!(why, "`shop` may not write under `billing/x`");
        assert!(p.may_at_all(Some(&audit), Want::Write).is_err());
        assert!(p.may(Some(&audit), Want::Read, "billing/x").is_ok());
        assert_eq!(
            p.may_at_all(None, Want::Read).unwrap_err(),
            "an unauthenticated caller may not read in this directory"
        );
        // Open reads: nothing to check.
        let open = Permissions::new().write("shop", "shop/");
        assert!(open.may(None, Want::Read, "anything").is_ok());
    }
}
