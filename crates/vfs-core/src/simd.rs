//! Arithmetic kernels for page layers that are worth the CPU's vector
//! instructions, behind safe functions (the runtime feature dispatch needs
//! `unsafe`, which only this crate may contain).
//!
//! Internal: the kernel of vfs-cksm's checksums, hidden from the documented
//! API and free to change with it; not for other users.

/// `(Σ c1[i]·w[i], Σ c2[i]·w[i])` with wrapping `u32` arithmetic, where
/// `w[i]` is the `i`-th little-endian `u32` of `bytes`. Only the first
/// `min(bytes.len() / 4, c1.len(), c2.len())` words take part.
///
/// Linear page checksums reduce to this: SQLite's WAL and cksumvfs
/// checksum (`s1 += w0 + s2; s2 += w1 + s1`) is a linear recurrence, so its
/// result is a dot product of the page's words with coefficients that
/// depend only on each word's distance from the end (see vfs-cksm). On
/// x86-64 CPUs with AVX2 (or SSE4.1) the products run eight (four) lanes
/// at a time, chosen at run time; elsewhere a portable loop gives the same
/// result. The three are tested against each other and the definition.
///
/// ```
/// let bytes: Vec<u8> = [1u32, 2, 3].iter().flat_map(|w| w.to_le_bytes()).collect();
/// assert_eq!(vfs_core::simd::wrapping_dot2(&bytes, &[1, 1, 1], &[0, 10, 100]), (6, 320));
/// ```
pub fn wrapping_dot2(bytes: &[u8], c1: &[u32], c2: &[u32]) -> (u32, u32) {
    let words = (bytes.len() / 4).min(c1.len()).min(c2.len());
    let (bytes, c1, c2) = (&bytes[..words * 4], &c1[..words], &c2[..words]);
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `dot2_avx2` only requires the CPU to support AVX2, which
        // was detected at run time just above; its body is safe code.
        return unsafe { dot2_avx2(bytes, c1, c2) };
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    if std::is_x86_feature_detected!("sse4.1") {
        // SAFETY: `dot2_sse41` only requires the CPU to support SSE4.1,
        // which was detected at run time just above; its body is safe code.
        return unsafe { dot2_sse41(bytes, c1, c2) };
    }
    dot2::<16>(bytes, c1, c2)
}

/// The portable kernel, compiled again with SSE4.1 enabled (its wrapping
/// 32-bit multiply is one instruction there, several with SSE2 alone).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
#[target_feature(enable = "sse4.1")]
fn dot2_sse41(bytes: &[u8], c1: &[u32], c2: &[u32]) -> (u32, u32) {
    dot2::<16>(bytes, c1, c2)
}

/// The portable kernel compiled with AVX2 (eight lanes per register, so
/// twice the lanes fit in registers).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
#[target_feature(enable = "avx2")]
fn dot2_avx2(bytes: &[u8], c1: &[u32], c2: &[u32]) -> (u32, u32) {
    dot2::<32>(bytes, c1, c2)
}

/// The kernel: `LANES` sums kept independently (so the compiler can hold
/// them in vector registers: 4 registers per sum is the sweet spot),
/// folded at the end.
#[inline(always)]
fn dot2<const LANES: usize>(bytes: &[u8], c1: &[u32], c2: &[u32]) -> (u32, u32) {
    let mut acc1 = [0u32; LANES];
    let mut acc2 = [0u32; LANES];
    let (words, _) = bytes.as_chunks::<4>();
    let (chunks, tail) = words.as_chunks::<LANES>();
    let (k1, t1) = c1.as_chunks::<LANES>();
    let (k2, t2) = c2.as_chunks::<LANES>();
    for ((d, x), y) in chunks.iter().zip(k1).zip(k2) {
        for l in 0..LANES {
            let w = u32::from_le_bytes(d[l]);
            acc1[l] = acc1[l].wrapping_add(w.wrapping_mul(x[l]));
            acc2[l] = acc2[l].wrapping_add(w.wrapping_mul(y[l]));
        }
    }
    let mut s1 = acc1.iter().fold(0u32, |a, b| a.wrapping_add(*b));
    let mut s2 = acc2.iter().fold(0u32, |a, b| a.wrapping_add(*b));
    for ((w, x), y) in tail.iter().zip(t1).zip(t2) {
        let w = u32::from_le_bytes(*w);
        s1 = s1.wrapping_add(w.wrapping_mul(*x));
        s2 = s2.wrapping_add(w.wrapping_mul(*y));
    }
    (s1, s2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8], c1: &[u32], c2: &[u32]) -> (u32, u32) {
        let mut s = (0u32, 0u32);
        for ((w, x), y) in bytes.chunks_exact(4).zip(c1).zip(c2) {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            s.0 = s.0.wrapping_add(w.wrapping_mul(*x));
            s.1 = s.1.wrapping_add(w.wrapping_mul(*y));
        }
        s
    }

    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn both_kernels_agree_with_the_definition_at_every_length() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for len in (0..300).chain([4088, 4096, 65528, 65536]) {
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            let words = len / 4 + 3; // longer than the data: the extra is ignored
            let c1: Vec<u32> = (0..words).map(|_| xorshift(&mut seed) as u32).collect();
            let c2: Vec<u32> = (0..words).map(|_| xorshift(&mut seed) as u32).collect();
            let want = reference(&bytes, &c1, &c2);
            assert_eq!(
                wrapping_dot2(&bytes, &c1, &c2),
                want,
                "dispatched, {len} bytes"
            );
            let n = len / 4;
            let (b, x, y) = (&bytes[..n * 4], &c1[..n], &c2[..n]);
            assert_eq!(dot2::<16>(b, x, y), want, "portable, {len} bytes");
            assert_eq!(dot2::<32>(b, x, y), want, "portable ×32, {len} bytes");
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            if std::is_x86_feature_detected!("sse4.1") {
                // SAFETY: SSE4.1 detected just above.
                assert_eq!(unsafe { dot2_sse41(b, x, y) }, want, "SSE4.1, {len} bytes");
            }
        }
    }

    #[test]
    fn shorter_coefficients_limit_the_words_used() {
        let bytes: Vec<u8> = (1u32..=8).flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(wrapping_dot2(&bytes, &[1, 1], &[1, 1, 1]), (3, 3));
        assert_eq!(wrapping_dot2(&bytes[..5], &[1; 8], &[2; 8]), (1, 2));
        assert_eq!(wrapping_dot2(&[], &[1], &[1]), (0, 0));
    }
}
