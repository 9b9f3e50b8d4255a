//! A private certificate authority in memory, made with rcgen: what an
//! example or a test needs to run TLS without files. Never for production
//! keys: they live only as long as the process.
//!
//! ```ignore
//! let pki = pki::Pki::new("farcall example CA");
//! let server = pki.issue("calculator", &["localhost", "127.0.0.1"]);
//! let tls = TlsConfig::builder()
//!     .identity_pem(server.chain.as_bytes(), server.key.as_bytes())
//!     .trust_pem(pki.ca_pem.as_bytes())
//!     .build()?;
//! ```

#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate authority: its certificate (PEM) and what signs with it.
pub(crate) struct Pki {
    /// The CA's certificate, the root a peer trusts.
    pub(crate) ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate the authority issued, with its private key (PEM).
pub(crate) struct Issued {
    /// The certificate chain, leaf first.
    pub(crate) chain: String,
    /// The private key.
    pub(crate) key: String,
}

impl Pki {
    /// A new authority named `name`, with a fresh key.
    pub(crate) fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        Pki {
            ca_pem: issuer.pem(),
            issuer,
        }
    }

    /// A certificate for `common_name`, valid for the DNS names and IP
    /// addresses in `names`, from now for a day.
    pub(crate) fn issue(&self, common_name: &str, names: &[&str]) -> Issued {
        self.issue_with(common_name, names, |_| {})
    }

    /// A certificate that expired a year ago.
    pub(crate) fn issue_expired(&self, common_name: &str, names: &[&str]) -> Issued {
        self.issue_with(common_name, names, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn issue_with(
        &self,
        common_name: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        adjust(&mut params);
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a signed certificate");
        Issued {
            chain: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}
