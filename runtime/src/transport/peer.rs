//! Who is at the other end of a socket, as the transport saw it, and
//! which of those peers a node trusts as its own host.
//!
//! A [`PeerAddr`] is read from the socket when a connection is
//! established, never parsed from a description, so a decision made on it
//! (the directory's write check, say) cannot be fooled by a name.
//!
//! ```
//! use farcall_runtime::transport::{PeerAddr, TrustedNetworks};
//!
//! let trusted = TrustedNetworks::default(); // loopback, unix, mem://
//! assert!(trusted.admits(&PeerAddr::Tcp("127.0.0.1:4000".parse().unwrap())));
//! assert!(trusted.admits(&PeerAddr::Unix));
//! assert!(!trusted.admits(&PeerAddr::Tcp("10.1.2.3:4000".parse().unwrap())));
//!
//! let narrow = TrustedNetworks::none().with_network("127.0.0.2/32".parse().unwrap());
//! assert!(!narrow.admits(&PeerAddr::Tcp("127.0.0.1:4000".parse().unwrap())));
//! assert!(narrow.admits(&PeerAddr::Tcp("127.0.0.2:4000".parse().unwrap())));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The far end of a connection, as its socket reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer at this socket address.
    Tcp(SocketAddr),
    /// A peer on a Unix domain socket (always this host).
    Unix,
    /// A peer in this process, over `mem://`.
    Mem,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "tcp://{a}"),
            PeerAddr::Unix => f.write_str("a unix socket"),
            PeerAddr::Mem => f.write_str("this process (mem://)"),
        }
    }
}

/// An IP network in CIDR form: `127.0.0.0/8`, `::1/128`, `10.0.0.0/8`.
/// A bare address is a network of that one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network of `addr` with a prefix of `prefix` bits, or `None` if
    /// the prefix is longer than the address (32 bits for IPv4, 128 for
    /// IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNetwork> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(IpNetwork { addr, prefix })
    }

    /// Whether `ip` is in this network. An IPv4 address mapped into IPv6
    /// (`::ffff:127.0.0.1`) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a network did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a network: {reason} (write it as 10.0.0.0/8, ::1/128 or a bare address)")]
pub struct IpNetworkError {
    input: String,
    reason: &'static str,
}

impl FromStr for IpNetwork {
    type Err = IpNetworkError;
    fn from_str(s: &str) -> Result<IpNetwork, IpNetworkError> {
        let err = |reason| IpNetworkError {
            input: s.chars().take(100).collect(),
            reason,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| err("the address is not an IP address"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix =
            match prefix {
                None => bits,
                Some(p) => p.parse::<u8>().ok().filter(|&p| p <= bits).ok_or_else(|| {
                    err("the prefix length is not a number of bits the address has")
                })?,
            };
        Ok(IpNetwork { addr, prefix })
    }
}

/// The peers a node counts as "the same host": some IP networks, and
/// whether Unix sockets and in-process `mem://` pipes count.
///
/// The default is loopback (`127.0.0.0/8` and `::1`), Unix sockets and
/// `mem://`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedNetworks {
    networks: Vec<IpNetwork>,
    unix: bool,
    mem: bool,
}

impl Default for TrustedNetworks {
    fn default() -> Self {
        TrustedNetworks {
            networks: vec![
                IpNetwork {
                    addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                    prefix: 8,
                },
                IpNetwork {
                    addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
            unix: true,
            mem: true,
        }
    }
}

impl TrustedNetworks {
    /// Trusts no peer at all.
    pub fn none() -> TrustedNetworks {
        TrustedNetworks {
            networks: Vec::new(),
            unix: false,
            mem: false,
        }
    }

    /// Also trusts TCP peers in `network`.
    pub fn with_network(mut self, network: IpNetwork) -> TrustedNetworks {
        self.networks.push(network);
        self
    }

    /// Whether peers on Unix sockets are trusted.
    pub fn with_unix(mut self, trusted: bool) -> TrustedNetworks {
        self.unix = trusted;
        self
    }

    /// Whether in-process `mem://` peers are trusted.
    pub fn with_mem(mut self, trusted: bool) -> TrustedNetworks {
        self.mem = trusted;
        self
    }

    /// The trusted IP networks.
    pub fn networks(&self) -> &[IpNetwork] {
        &self.networks
    }

    /// Whether `peer` is trusted.
    pub fn admits(&self, peer: &PeerAddr) -> bool {
        match peer {
            PeerAddr::Tcp(a) => self.networks.iter().any(|n| n.contains(a.ip())),
            PeerAddr::Unix => self.unix,
            PeerAddr::Mem => self.mem,
        }
    }
}

impl fmt::Display for TrustedNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.networks.iter().map(ToString::to_string).collect();
        if self.unix {
            parts.push("unix sockets".into());
        }
        if self.mem {
            parts.push("mem://".into());
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> PeerAddr {
        PeerAddr::Tcp(s.parse().unwrap())
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: IpNetwork = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let one: IpNetwork = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "x/8",
            "10.0.0.0/",
            "",
            "10.0.0.0/-1",
        ] {
            let e = bad.parse::<IpNetwork>().unwrap_err().to_string();
            assert!(e.contains("is not a network"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_is_this_host() {
        let t = TrustedNetworks::default();
        for ok in [
            "127.0.0.1:4000",
            "127.3.2.1:1",
            "[::1]:4000",
            "[::ffff:127.0.0.1]:4000",
        ] {
            assert!(t.admits(&tcp(ok)), "{ok}");
        }
        assert!(t.admits(&PeerAddr::Unix));
        assert!(t.admits(&PeerAddr::Mem));
        for no in [
            "10.0.0.1:4000",
            "192.168.1.20:4000",
            "0.0.0.0:4000",
            "[2001:db8::1]:4000",
            "[::ffff:10.0.0.1]:4000",
        ] {
            assert!(!t.admits(&tcp(no)), "{no}");
        }
        assert_eq!(t.to_string(), "127.0.0.0/8, ::1/128, unix sockets, mem://");
        assert_eq!(TrustedNetworks::none().to_string(), "nothing");
    }
}
