//! Stable hashes: interface and method ids, signature fingerprints.

/// FNV-1a, 64 bits (the same function as the runtime's).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// 32 bits of FNV-1a, folded.
pub(crate) fn fnv1a32(bytes: &[u8]) -> u32 {
    let h = fnv1a64(bytes);
    (h >> 32) as u32 ^ h as u32
}
