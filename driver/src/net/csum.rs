//! The Internet checksum (RFC 1071) as the device computes it: a ones-complement sum of 16-bit
//! big-endian words, the frame's first byte of a pair the high one. The RTL TX engine computes
//! the same sum per beat (`fv_net_tx_engine.sv`).

/// Ones-complement sum of `bytes` added to `sum` (not folded to 16 bits, not complemented;
/// kept below 2^33 so callers may add pseudo-header terms). An odd final byte is the high byte
/// of a word whose low byte is 0. Eight bytes at a time: 2^64 = 1 modulo 0xffff, so a 64-bit
/// sum with end-around carries is the same ones-complement sum.
pub fn add(sum: u64, bytes: &[u8]) -> u64 {
    let mut acc = sum;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes(w.try_into().expect("8 bytes")));
        acc = s + u64::from(carry);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes(last));
        acc = s + u64::from(carry);
    }
    // Down to 33 bits (each fold keeps the value modulo 0xffff).
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    (acc & 0xffff_ffff) + (acc >> 32)
}

/// Fold a sum to 16 bits (end-around carries).
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum to store for a sum: its complement, with 0 sent as 0xFFFF (the same value in
/// ones-complement arithmetic, and the only one UDP can carry: 0 there means "no checksum").
pub fn finish(sum: u64) -> u16 {
    match !fold(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// virtio-net's NEEDS_CSUM: sum the frame from `start` to its end (the checksum field holds
/// the pseudo-header's sum, as the driver left it) and store the checksum at `start + offset`.
/// The caller checked that `start + offset + 2 <= frame.len()`.
pub fn insert(frame: &mut [u8], start: usize, offset: usize) {
    let c = finish(add(0, &frame[start..]));
    frame[start + offset..start + offset + 2].copy_from_slice(&c.to_be_bytes());
}

/// True when the bytes, checksum field included, sum to all ones (a valid checksum).
pub fn verify(sum: u64) -> bool {
    fold(sum) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &b)), 0xddf2);
        assert_eq!(finish(add(0, &b)), !0xddf2);
    }

    #[test]
    fn wide_sum_matches_the_word_by_word_definition() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for len in 0..300 {
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut words = 0u64;
            for (i, &v) in b.iter().enumerate() {
                words += if i % 2 == 0 {
                    u64::from(v) << 8
                } else {
                    u64::from(v)
                };
            }
            assert_eq!(fold(add(0, &b)), fold(words), "{len} bytes");
            assert_eq!(fold(add(0xffff_ffff, &b)), fold(words + 0xffff_ffff));
        }
        assert_eq!(fold(add(0, &[0xff; 4096])), 0xffff);
    }

    #[test]
    fn inserted_checksum_verifies() {
        let mut f: Vec<u8> = (0..101u32).map(|i| (i * 7 + 3) as u8).collect();
        f[40] = 0;
        f[41] = 0;
        insert(&mut f, 24, 16);
        assert!(verify(add(0, &f[24..])));
        // Odd start: the sum restarts its word pairing at `start`.
        let mut g = f.clone();
        g[35..37].fill(0);
        insert(&mut g, 25, 10);
        assert!(verify(add(0, &g[25..])));
    }
}
