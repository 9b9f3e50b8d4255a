//! Transport security: TLS and mutual TLS on `tls://host:port`, with
//! [rustls].
//!
//! A node given a [`TlsConfig`] listens on `tls://` addresses with its
//! certificate and dials `tls://` addresses verifying the server's
//! certificate and name against the roots it trusts. With
//! [`ClientAuth::Required`] its listeners accept only dialers that present
//! a certificate from those roots (mutual TLS); a node that has an identity
//! presents it when a listener asks. Both sides offer the ALPN protocol
//! [`ALPN`], so a TLS client of another protocol is refused during the TLS
//! handshake.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use farcall_runtime::Node;
//! use farcall_runtime::tls::{ClientAuth, TlsConfig};
//!
//! let tls = TlsConfig::builder()
//!     .identity_files("node.crt", "node.key")
//!     .trust_file("ca.crt")
//!     .client_auth(ClientAuth::Required)
//!     .build()?;
//! let node = Node::builder().tls(tls).listen("tls://127.0.0.1:7443").await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocol id farcall offers and accepts: the protocol name and
/// its version ([`crate::wire::PROTOCOL_VERSION`]).
pub const ALPN: &[u8] = b"farcall/2";

/// Whether a node's TLS listeners ask dialers for a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is asked for (plain TLS).
    #[default]
    None,
    /// A client certificate is verified if one is presented; a dialer
    /// without one is still accepted (and has no identity).
    Optional,
    /// A client certificate signed by a trusted root is required (mutual
    /// TLS).
    Required,
}

/// Why a TLS configuration cannot be built. The messages name the file or
/// the part at fault, never a key's bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {what} from {path}: {source}")]
    Read {
        /// What the file should hold.
        what: &'static str,
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// PEM text holds nothing usable.
    #[error("the {what} is not valid PEM: {reason}")]
    Pem {
        /// What the text should hold.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match its
    /// certificate, an unusable root, ...).
    #[error("the TLS configuration is refused: {0}")]
    Config(String),
    /// A listener needs an identity (certificate and key).
    #[error(
        "a TLS listener needs a certificate and key (TlsConfig::identity_pem or identity_files)"
    )]
    NoIdentity,
    /// Client certificates are asked for, but no root is trusted to verify
    /// them.
    #[error("client certificates are required, but no trusted root is set to verify them")]
    NoClientRoots,
}

/// Builds a [`TlsConfig`]: an identity (certificate chain and key), the
/// roots trusted to verify peers, and whether listeners ask for client
/// certificates. Errors are kept until [`TlsConfigBuilder::build`].
#[derive(Default)]
pub struct TlsConfigBuilder {
    chain: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
    roots: Vec<CertificateDer<'static>>,
    client_auth: ClientAuth,
    error: Option<TlsError>,
}

impl fmt::Debug for TlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfigBuilder")
            .field("chain", &self.chain.len())
            .field("key", &self.key.is_some())
            .field("roots", &self.roots.len())
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

impl TlsConfigBuilder {
    fn keep(&mut self, e: TlsError) {
        self.error.get_or_insert(e);
    }

    /// This node's certificate chain (leaf first) and private key, as PEM
    /// text: served by its listeners, presented when a listener asks for
    /// a client certificate.
    pub fn identity_pem(mut self, chain: &[u8], key: &[u8]) -> Self {
        match certs(chain, "certificate chain") {
            Ok(c) => self.chain = c,
            Err(e) => self.keep(e),
        }
        match PrivateKeyDer::from_pem_slice(key) {
            Ok(k) => self.key = Some(k),
            Err(e) => self.keep(TlsError::Pem {
                what: "private key",
                reason: pem_reason(&e),
            }),
        }
        self
    }

    /// [`TlsConfigBuilder::identity_pem`] from two files.
    pub fn identity_files(self, chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        let chain = read(chain.as_ref(), "the certificate chain");
        let key = read(key.as_ref(), "the private key");
        match (chain, key) {
            (Ok(c), Ok(k)) => self.identity_pem(&c, &k),
            (Err(e), _) | (_, Err(e)) => {
                let mut b = self;
                b.keep(e);
                b
            }
        }
    }

    /// Roots (CA certificates, PEM) trusted to verify the servers this
    /// node dials, and the client certificates its listeners ask for.
    /// May be called more than once; the roots add up.
    pub fn trust_pem(mut self, roots: &[u8]) -> Self {
        match certs(roots, "trusted roots") {
            Ok(c) => self.roots.extend(c),
            Err(e) => self.keep(e),
        }
        self
    }

    /// [`TlsConfigBuilder::trust_pem`] from a file.
    pub fn trust_file(self, roots: impl AsRef<Path>) -> Self {
        match read(roots.as_ref(), "the trusted roots") {
            Ok(r) => self.trust_pem(&r),
            Err(e) => {
                let mut b = self;
                b.keep(e);
                b
            }
        }
    }

    /// Whether listeners ask dialers for a certificate (default
    /// [`ClientAuth::None`]).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// The configuration, or the first error met while building it.
    pub fn build(self) -> Result<TlsConfig, TlsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        for r in &self.roots {
            roots.add(r.clone()).map_err(config)?;
        }
        let roots = Arc::new(roots);

        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_root_certificates(roots.clone());
        let mut client = match &self.key {
            Some(key) => client
                .with_client_auth_cert(self.chain.clone(), key.clone_key())
                .map_err(config)?,
            None => client.with_no_client_auth(),
        };
        client.alpn_protocols = vec![ALPN.to_vec()];

        let server = match &self.key {
            None => None,
            Some(key) => {
                let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(config)?;
                let builder = match self.client_auth {
                    ClientAuth::None => builder.with_no_client_auth(),
                    auth => {
                        if self.roots.is_empty() {
                            return Err(TlsError::NoClientRoots);
                        }
                        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                            roots.clone(),
                            provider.clone(),
                        );
                        let verifier = if auth == ClientAuth::Optional {
                            verifier.allow_unauthenticated()
                        } else {
                            verifier
                        };
                        let verifier = verifier
                            .build()
                            .map_err(|e| TlsError::Config(e.to_string()))?;
                        builder.with_client_cert_verifier(verifier)
                    }
                };
                let mut server = builder
                    .with_single_cert(self.chain.clone(), key.clone_key())
                    .map_err(config)?;
                server.alpn_protocols = vec![ALPN.to_vec()];
                Some(Arc::new(server))
            }
        };
        Ok(TlsConfig {
            client: Arc::new(client),
            server,
            client_auth: self.client_auth,
        })
    }
}

/// A node's TLS settings, built by [`TlsConfig::builder`] and given to
/// [`crate::NodeBuilder::tls`]. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) client: Arc<rustls::ClientConfig>,
    pub(crate) server: Option<Arc<rustls::ServerConfig>>,
    client_auth: ClientAuth,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("listens", &self.server.is_some())
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

impl TlsConfig {
    /// Starts a configuration.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// Whether listeners ask dialers for a certificate.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// A configuration built from rustls configurations of the caller's
    /// own (other roots, verifiers, versions). farcall sets ALPN to
    /// [`ALPN`] on both.
    pub fn from_rustls(
        client: rustls::ClientConfig,
        server: Option<rustls::ServerConfig>,
    ) -> TlsConfig {
        let mut client = client;
        client.alpn_protocols = vec![ALPN.to_vec()];
        TlsConfig {
            client: Arc::new(client),
            server: server.map(|mut s| {
                s.alpn_protocols = vec![ALPN.to_vec()];
                Arc::new(s)
            }),
            client_auth: ClientAuth::None,
        }
    }
}

/// Who the peer of a TLS connection is, from the certificate it presented
/// (the server's always, a client's under mutual TLS).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The common name (CN) of the certificate's subject, if it has one.
    pub common_name: Option<String>,
    /// The DNS and URI names of its subject alternative names.
    pub alt_names: Vec<String>,
}

impl PeerIdentity {
    /// Reads the identity of an end-entity certificate; `None` if it does
    /// not parse (rustls has verified it by then, so that does not
    /// happen for a connected peer).
    pub fn from_der(cert: &[u8]) -> Option<PeerIdentity> {
        let der = CertificateDer::from(cert);
        let ee = webpki::EndEntityCert::try_from(&der).ok()?;
        let mut alt_names: Vec<String> = ee.valid_dns_names().map(str::to_owned).collect();
        alt_names.extend(ee.valid_uri_names().map(str::to_owned));
        Some(PeerIdentity {
            common_name: common_name(ee.subject()),
            alt_names,
        })
    }

    /// Whether `name` is the common name or one of the alternative names.
    pub fn has_name(&self, name: &str) -> bool {
        self.common_name.as_deref() == Some(name) || self.alt_names.iter().any(|n| n == name)
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.common_name, self.alt_names.first()) {
            (Some(cn), _) => write!(f, "CN={cn}"),
            (None, Some(n)) => f.write_str(n),
            (None, None) => f.write_str("a certificate without names"),
        }
    }
}

/// The common name in a DER-encoded X.501 `Name` (the contents of its
/// outer SEQUENCE): SET { SEQUENCE { OID 2.5.4.3, string } }, the first
/// one found. Every length is checked against what is left.
fn common_name(mut name: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    while !name.is_empty() {
        let (tag, set, rest) = der_item(name)?;
        name = rest;
        if tag != 0x31 {
            return None;
        }
        let mut set = set;
        while !set.is_empty() {
            let (tag, attr, rest) = der_item(set)?;
            set = rest;
            if tag != 0x30 {
                return None;
            }
            let (tag, oid, value) = der_item(attr)?;
            if tag == 0x06 && oid == CN {
                let (tag, text, _) = der_item(value)?;
                // UTF8String, PrintableString, IA5String, T61String.
                if matches!(tag, 0x0c | 0x13 | 0x16 | 0x14) {
                    return std::str::from_utf8(text).ok().map(str::to_owned);
                }
                return None;
            }
        }
    }
    None
}

/// One DER item: its tag, its contents and what follows it.
fn der_item(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (first as usize, b)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | x as usize);
        (len, &b[n..])
    };
    if b.len() < len {
        return None;
    }
    Some((tag, &b[..len], &b[len..]))
}

fn certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            reason: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            reason: "it holds no certificate".into(),
        });
    }
    Ok(certs)
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::NoItemsFound => "it holds no item of that kind".into(),
        E::MissingSectionEnd { .. } => "a section has no END line".into(),
        E::IllegalSectionStart { .. } => "a BEGIN line is malformed".into(),
        E::Base64Decode(_) => "a section is not valid base64".into(),
        _ => "it does not parse".into(),
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_name_of_a_name() {
        // SET { SEQUENCE { OID 2.5.4.10 "acme" } }, SET { SEQUENCE { OID 2.5.4.3 "alice" } }
        let name = [
            0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x04, b'a', b'c', b'm',
            b'e', 0x31, 0x0e, 0x30, 0x0c, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x05, b'a', b'l',
            b'i', b'c', b'e',
        ];
        assert_eq!(common_name(&name).as_deref(), Some("alice"));
        // Cut anywhere, it never panics.
        for n in 0..name.len() {
            let _ = common_name(&name[..n]);
        }
        assert_eq!(common_name(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let e = TlsConfig::builder()
            .identity_pem(b"not pem", b"nor this")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("certificate chain"), "{e}");
        let e = TlsConfig::builder()
            .trust_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
