//! TLS and tokens for every command: `--tls-ca`, `--tls-cert`,
//! `--tls-key`, `--tls-client-ca` and `--token`, or their environment
//! variables, turned into the settings of the command's node.

use std::path::PathBuf;
use std::sync::OnceLock;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use clap::Args;
use farcall::auth::{AnyOf, CertificateNames, Tokens};
use farcall::mme::{Allowed, Permissions};
use farcall::node::NodeBuilder;
use farcall::tls::{ClientAuth, TlsConfig};
use serde::Deserialize;

use crate::Fail;

/// The options, as clap parses them (global: they go before or after the
/// subcommand).
#[derive(Debug, Args)]
pub(crate) struct SecurityArgs {
    /// Roots (PEM) that the servers this command dials on tls:// must be
    /// signed by.
    #[arg(long, global = true, value_name = "FILE", env = "FARCALL_TLS_CA")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// This node's certificate chain (PEM): served on a tls:// listener,
    /// presented to servers that ask for a client certificate.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "FARCALL_TLS_CERT",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "FARCALL_TLS_KEY",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
    /// `serve` commands: require client certificates signed by these
    /// roots (PEM), mutual TLS.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "FARCALL_TLS_CLIENT_CA"
    )]
    pub(crate) tls_client_ca: Option<PathBuf>,
    /// A token presented in the handshake of every connection this command
    /// dials (prefer the environment variable: a command line is visible
    /// to other users of the machine).
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "FARCALL_TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
}

static SETTINGS: OnceLock<Result<NodeBuilder, String>> = OnceLock::new();

/// Reads the certificates and keys once, before any command runs.
pub(crate) fn init(args: &SecurityArgs) -> Result<(), Fail> {
    let built = SETTINGS.get_or_init(|| build(args));
    built
        .as_ref()
        .map(|_| ())
        .map_err(|e| Fail::usage(e.clone()))
}

/// A node builder with the command's TLS settings and token.
pub(crate) fn node() -> NodeBuilder {
    match SETTINGS.get() {
        Some(Ok(b)) => b.clone(),
        _ => NodeBuilder::default(),
    }
}

fn build(args: &SecurityArgs) -> Result<NodeBuilder, String> {
    let mut node = NodeBuilder::default();
    if let Some(token) = &args.token {
        node = node.credentials(token.clone().into_bytes());
    }
    if args.tls_ca.is_none() && args.tls_cert.is_none() && args.tls_client_ca.is_none() {
        return Ok(node);
    }
    let mut tls = TlsConfig::builder();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        tls = tls.identity_files(cert, key);
    }
    if let Some(ca) = &args.tls_ca {
        tls = tls.trust_file(ca);
    }
    if let Some(ca) = &args.tls_client_ca {
        tls = tls.trust_file(ca).client_auth(ClientAuth::Required);
    }
    let tls = tls.build().map_err(|e| format!("the TLS options: {e}"))?;
    Ok(node.tls(tls))
}

/// A broker's policy file: who is admitted, and what each may do. (No
/// `Debug`: it holds tokens.)
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Policy {
    /// Principal to token.
    tokens: BTreeMap<String, String>,
    /// Names admitted by their client certificate (mutual TLS).
    certificates: Vec<String>,
    /// The broker's: principal (or `*`) to what it may do.
    principals: HashMap<String, Allowed>,
    /// The directory's: principal (or `*`) to the name prefixes it may
    /// write under.
    write: BTreeMap<String, Vec<String>>,
    /// The directory's: principal (or `*`) to the name prefixes it may
    /// read under, once reads are restricted.
    read: BTreeMap<String, Vec<String>>,
    /// The directory's: whether reads need a permission.
    restrict_reads: bool,
}

impl Policy {
    /// Reads and checks a policy file; the error names the file and never
    /// shows a token.
    pub(crate) fn read(file: &Path) -> Result<Policy, Fail> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Fail::usage(format!("--policy {}: {e}", file.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            Fail::usage(format!(
                "--policy {}: not a policy (line {}, column {}: {})",
                file.display(),
                e.line(),
                e.column(),
                match e.classify() {
                    serde_json::error::Category::Data =>
                        "a field or value is not what a policy holds",
                    _ => "not valid JSON",
                }
            ))
        })
    }

    /// `node` with an authenticator for the policy's tokens and
    /// certificates (none if it names neither).
    pub(crate) fn authenticate(&self, node: NodeBuilder) -> NodeBuilder {
        if self.tokens.is_empty() && self.certificates.is_empty() {
            return node;
        }
        let mut any = AnyOf::new();
        if !self.certificates.is_empty() {
            any = any.or(CertificateNames::allow(self.certificates.clone()));
        }
        if !self.tokens.is_empty() {
            let tokens = self
                .tokens
                .iter()
                .fold(Tokens::new(), |t, (who, token)| t.allow(token, who.clone()));
            any = any.or(tokens);
        }
        node.authenticator(any)
    }

    /// The directory's permissions on names.
    pub(crate) fn names(&self) -> farcall::directory::Permissions {
        let mut p = farcall::directory::Permissions::new();
        for (who, prefixes) in &self.write {
            for prefix in prefixes {
                p = p.write(who, prefix);
            }
        }
        for (who, prefixes) in &self.read {
            for prefix in prefixes {
                p = p.read(who, prefix);
            }
        }
        if self.restrict_reads {
            p = p.restrict_reads();
        }
        p
    }

    /// The permissions on subjects and queues.
    pub(crate) fn permissions(&self) -> Permissions {
        self.principals
            .iter()
            .fold(Permissions::new(), |p, (who, allowed)| {
                p.allow(who, allowed.clone())
            })
    }
}
