//! Call metadata as NATS headers, so that other NATS tools see (and can
//! set) `traceparent` and its kin.
//!
//! A value that is header-safe text (printable ASCII, no line break)
//! travels as it is, under its key. Any other value travels base64-encoded
//! under its key with `-bin` appended (gRPC's convention); a header whose
//! name ends in `-bin` is read back as base64. Headers whose names are not
//! metadata keys (`Nats-Msg-Id`, say) are not metadata.

use async_nats::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use farcall_runtime::{Metadata, MetadataError};

const BIN: &str = "-bin";

fn header_safe(v: &[u8]) -> bool {
    v.iter().all(|&b| (0x20..0x7f).contains(&b))
}

/// The headers that carry `m` (`None` for no metadata).
pub(crate) fn to_headers(m: &Metadata) -> Option<HeaderMap> {
    if m.is_empty() {
        return None;
    }
    let mut h = HeaderMap::new();
    for (k, v) in m.iter() {
        match std::str::from_utf8(v) {
            Ok(text) if header_safe(v) && !k.ends_with(BIN) => h.insert(k, text),
            _ => h.insert(format!("{k}{BIN}").as_str(), STANDARD.encode(v).as_str()),
        }
    }
    Some(h)
}

/// The metadata headers carry; headers that are not metadata are passed
/// over, and a value that does not decode is an error.
pub(crate) fn from_headers(h: Option<&HeaderMap>) -> Result<Metadata, MetadataError> {
    let mut m = Metadata::new();
    let Some(h) = h else { return Ok(m) };
    for (name, values) in h.iter() {
        let name: &str = name.as_ref();
        let Some(value) = values.first() else {
            continue;
        };
        let value: &str = value.as_ref();
        match name.strip_suffix(BIN) {
            Some(key) => {
                let Ok(bytes) = STANDARD.decode(value) else {
                    return Err(MetadataError::Malformed("a -bin header is not base64"));
                };
                if m.insert(key, bytes).is_err() {
                    continue;
                }
            }
            None => {
                if m.insert(name, value.to_owned()).is_err() {
                    continue;
                }
            }
        }
    }
    m.check(&farcall_runtime::MetadataLimits::default())?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_values_round_trip() {
        let m = Metadata::new()
            .with(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .with("blob", vec![0u8, 1, 2, 255]);
        let h = to_headers(&m).unwrap();
        let tp: &str = h.get("traceparent").unwrap().as_ref();
        assert!(tp.starts_with("00-"));
        assert!(h.get("blob-bin").is_some());
        let back = from_headers(Some(&h)).unwrap();
        assert_eq!(back.get("blob").unwrap().as_ref(), &[0u8, 1, 2, 255]);
        assert_eq!(back.get_str("traceparent"), m.get_str("traceparent"));
    }

    #[test]
    fn other_headers_are_not_metadata() {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", "42");
        h.insert("tenant", "acme");
        let m = from_headers(Some(&h)).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m.get_str("tenant"), Some("acme"));
    }
}
