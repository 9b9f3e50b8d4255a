//! Endpoint addresses: one string form for every transport.
//!
//! ```
//! use farcall_runtime::Address;
//!
//! let a: Address = "tcp://127.0.0.1:7000".parse()?;
//! assert_eq!(a.to_string(), "tcp://127.0.0.1:7000");
//! let m: Address = "mem://orders".parse()?;
//! assert!(matches!(m, Address::Mem(_)));
//! assert!("tcp://nohost".parse::<Address>().is_err());
//! # Ok::<(), farcall_runtime::AddressError>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a node listens or what it connects to.
///
/// The string forms are `tcp://host:port`, `tls://host:port` (TLS over
/// TCP), `unix:///absolute/path`, `mem://name` (in-process, no socket) and
/// `nats://host:port` (the NATS backend, which a node does not dial:
/// refused by [`Address::check_supported`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A TCP endpoint: a host name or IP literal and a port (0 = ephemeral).
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port number; 0 asks the system for a free one when listening.
        port: u16,
    },
    /// A Unix domain socket at an absolute path.
    Unix(PathBuf),
    /// An in-process endpoint, reachable only from the same process.
    Mem(String),
    /// A NATS server (the distributed backend).
    Nats {
        /// Host name or IP address.
        host: String,
        /// Port number.
        port: u16,
    },
    /// TLS over TCP: the server's certificate is checked against `host`
    /// (a DNS name or an IP literal). Needs the node's TLS settings.
    Tls {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port number; 0 asks the system for a free one when listening.
        port: u16,
    },
}

/// Why an address string was refused. Every variant carries the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The string has no `scheme://` prefix.
    #[error("address `{input}` has no scheme; expected tcp://, tls://, unix://, mem:// or nats://")]
    MissingScheme {
        /// The string that was parsed.
        input: String,
    },
    /// The scheme is not one farcall knows.
    #[error(
        "address `{input}` has unknown scheme `{scheme}`; expected tcp, tls, unix, mem or nats"
    )]
    UnknownScheme {
        /// The string that was parsed.
        input: String,
        /// The scheme found before `://`.
        scheme: String,
    },
    /// A `host:port` part is malformed.
    #[error("address `{input}`: {reason}")]
    BadHostPort {
        /// The string that was parsed.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `unix://` address whose path is not absolute.
    #[error("address `{input}`: a unix socket path must be absolute (unix:///path/to/socket)")]
    RelativeUnixPath {
        /// The string that was parsed.
        input: String,
    },
    /// A `mem://` address with an empty or invalid name.
    #[error("address `{input}`: a mem:// name must be 1 to 255 characters, without `/`")]
    BadMemName {
        /// The string that was parsed.
        input: String,
    },
    /// The address parses, but its backend is not built into this binary.
    #[error("address `{input}`: the {scheme} backend is not built into this farcall")]
    BackendNotBuilt {
        /// The string that was parsed.
        input: String,
        /// The scheme whose backend is missing.
        scheme: &'static str,
    },
}

impl Address {
    /// Refuses addresses a node cannot listen on or dial in this build:
    /// `nats://` (the broker's and the directory's backend, not a node's
    /// transport), and `tls://` without the `tls` feature.
    pub fn check_supported(&self) -> Result<(), AddressError> {
        match self {
            Address::Nats { .. } => Err(AddressError::BackendNotBuilt {
                input: self.to_string(),
                scheme: "nats",
            }),
            #[cfg(not(feature = "tls"))]
            Address::Tls { .. } => Err(AddressError::BackendNotBuilt {
                input: self.to_string(),
                scheme: "tls",
            }),
            _ => Ok(()),
        }
    }

    /// The scheme of this address, without `://`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Address::Tcp { .. } => "tcp",
            Address::Unix(_) => "unix",
            Address::Mem(_) => "mem",
            Address::Nats { .. } => "nats",
            Address::Tls { .. } => "tls",
        }
    }
}

fn parse_host_port(input: &str, rest: &str) -> Result<(String, u16), AddressError> {
    let bad = |reason| AddressError::BadHostPort {
        input: input.to_owned(),
        reason,
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("missing `]` after an IPv6 host"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing `:port` after the host"))?;
        (host, port)
    } else {
        rest.rsplit_once(':')
            .ok_or_else(|| bad("missing `:port` after the host"))?
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    if host.contains(['/', '?', '#', '@', ' ', '[', ']']) {
        return Err(bad("the host contains a character that is not allowed"));
    }
    if port.is_empty() {
        return Err(bad("the port is empty"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    Ok((host.to_owned(), port))
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) =
            input
                .split_once("://")
                .ok_or_else(|| AddressError::MissingScheme {
                    input: input.to_owned(),
                })?;
        match scheme {
            "tcp" => {
                let (host, port) = parse_host_port(input, rest)?;
                Ok(Address::Tcp { host, port })
            }
            "nats" => {
                let (host, port) = parse_host_port(input, rest)?;
                Ok(Address::Nats { host, port })
            }
            "tls" => {
                let (host, port) = parse_host_port(input, rest)?;
                Ok(Address::Tls { host, port })
            }
            "unix" => {
                if !rest.starts_with('/') || rest.len() < 2 {
                    return Err(AddressError::RelativeUnixPath {
                        input: input.to_owned(),
                    });
                }
                Ok(Address::Unix(PathBuf::from(rest)))
            }
            "mem" => {
                if rest.is_empty() || rest.len() > 255 || rest.contains('/') {
                    return Err(AddressError::BadMemName {
                        input: input.to_owned(),
                    });
                }
                Ok(Address::Mem(rest.to_owned()))
            }
            other => Err(AddressError::UnknownScheme {
                input: input.to_owned(),
                scheme: other.to_owned(),
            }),
        }
    }
}

impl TryFrom<&str> for Address {
    type Error = AddressError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<&String> for Address {
    type Error = AddressError;
    fn try_from(s: &String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<&Address> for Address {
    type Error = AddressError;
    fn try_from(a: &Address) -> Result<Self, Self::Error> {
        Ok(a.clone())
    }
}

fn fmt_host(f: &mut fmt::Formatter<'_>, host: &str) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]")
    } else {
        f.write_str(host)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } => {
                f.write_str("tcp://")?;
                fmt_host(f, host)?;
                write!(f, ":{port}")
            }
            Address::Nats { host, port } => {
                f.write_str("nats://")?;
                fmt_host(f, host)?;
                write!(f, ":{port}")
            }
            Address::Tls { host, port } => {
                f.write_str("tls://")?;
                fmt_host(f, host)?;
                write!(f, ":{port}")
            }
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Mem(n) => write!(f, "mem://{n}"),
        }
    }
}

/// `addrs` for people: each in its string form, separated by ", "
/// ("no address" if there is none).
pub fn joined(addrs: &[Address]) -> String {
    if addrs.is_empty() {
        return "no address".to_owned();
    }
    addrs
        .iter()
        .map(Address::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_addresses_reads_as_one() {
        let a: Address = "tcp://127.0.0.1:46267".parse().unwrap();
        let b: Address = "mem://orders".parse().unwrap();
        assert_eq!(
            joined(&[a.clone(), b]),
            "tcp://127.0.0.1:46267, mem://orders"
        );
        assert_eq!(joined(&[a]), "tcp://127.0.0.1:46267");
        assert_eq!(joined(&[]), "no address");
    }

    #[test]
    fn round_trips() {
        for s in [
            "tcp://127.0.0.1:0",
            "tcp://localhost:7000",
            "tcp://[::1]:80",
            "unix:///tmp/x.sock",
            "mem://a",
            "nats://127.0.0.1:4222",
            "tls://127.0.0.1:7443",
            "tls://[::1]:7443",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn errors_name_the_input() {
        for s in [
            "127.0.0.1:80",
            "ftp://x:1",
            "tcp://x",
            "tcp://:80",
            "tcp://x:99999",
            "tcp://x:",
            "unix://rel/path",
            "mem://",
            "mem://a/b",
            "tcp://[::1:80",
        ] {
            let e = s.parse::<Address>().unwrap_err();
            assert!(e.to_string().contains(s), "{e}");
        }
    }

    #[test]
    fn nats_parses_but_is_not_built() {
        let a: Address = "nats://127.0.0.1:4222".parse().unwrap();
        let e = a.check_supported().unwrap_err();
        assert!(matches!(
            e,
            AddressError::BackendNotBuilt { scheme: "nats", .. }
        ));
        assert!(e.to_string().contains("not built"));
    }
}
