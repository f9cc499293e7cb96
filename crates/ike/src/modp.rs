//! Finite-field Diffie-Hellman for groups 2 (RFC 2409 §6.2) and 14 (RFC 3526 §3), over
//! aws-lc's constant-time `BN_mod_exp_mont_consttime`.
//!
//! This is the one module with `unsafe`: calls into aws-lc-sys on BIGNUMs that this module
//! allocates, owns and frees (see [`Bn`]); every pointer is checked for NULL after allocation
//! and every buffer passed has the length the call is told.
#![allow(unsafe_code)]

use aws_lc_sys as sys;
use zeroize::Zeroizing;

use crate::proposal::DhGroup;

/// Octets of private exponent: 256 bits, twice the strength of either group (RFC 3526 §8
/// guidance), which keeps a key exchange at a fraction of a full-size exponentiation.
pub const EXPONENT_LEN: usize = 32;

/// RFC 2409 §6.2, the 1024-bit MODP group (IKE group 2).
const P1024: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";

/// RFC 3526 §3, the 2048-bit MODP group (IKE group 14).
const P2048: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

/// The prime of a MODP group, big-endian.
pub fn prime(group: DhGroup) -> Option<Vec<u8>> {
    match group {
        DhGroup::Modp1024 => Some(unhex(P1024)),
        DhGroup::Modp2048 => Some(unhex(P2048)),
        _ => None,
    }
}

/// An owned BIGNUM, freed (and cleared) on drop.
struct Bn(*mut sys::BIGNUM);

impl Bn {
    fn from_be(bytes: &[u8]) -> Option<Bn> {
        // SAFETY: `bytes` is a valid slice of `bytes.len()` octets; a NULL `ret` asks for a
        // new BIGNUM, which we own from here on.
        let p = unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), core::ptr::null_mut()) };
        (!p.is_null()).then_some(Bn(p))
    }

    fn new() -> Option<Bn> {
        // SAFETY: plain allocation; checked for NULL.
        let p = unsafe { sys::BN_new() };
        (!p.is_null()).then_some(Bn(p))
    }

    fn to_be_padded(&self, len: usize) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        // SAFETY: `out` has exactly `len` writable octets; self.0 is a valid BIGNUM.
        let ok = unsafe { sys::BN_bn2bin_padded(out.as_mut_ptr(), len, self.0) };
        (ok == 1).then_some(out)
    }
}

impl Drop for Bn {
    fn drop(&mut self) {
        // SAFETY: self.0 came from BN_new/BN_bin2bn and is freed exactly once.
        unsafe { sys::BN_clear_free(self.0) }
    }
}

struct Ctx(*mut sys::BN_CTX);

impl Ctx {
    fn new() -> Option<Ctx> {
        // SAFETY: plain allocation; checked for NULL.
        let p = unsafe { sys::BN_CTX_new() };
        (!p.is_null()).then_some(Ctx(p))
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: allocated by BN_CTX_new, freed once.
        unsafe { sys::BN_CTX_free(self.0) }
    }
}

/// base^exp mod p, in constant time with respect to `exp`, padded to the modulus length.
fn mod_exp(base: &[u8], exp: &[u8], p: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let b = Bn::from_be(base)?;
    let e = Bn::from_be(exp)?;
    let m = Bn::from_be(p)?;
    let r = Bn::new()?;
    let ctx = Ctx::new()?;
    // SAFETY: all pointers are valid, owned BIGNUMs / BN_CTX allocated above; a NULL
    // Montgomery context makes aws-lc build one for `m`. `m` is odd (a safe prime), as
    // BN_mod_exp_mont_consttime requires, and `b` < `m` (callers check or use g = 2).
    let ok =
        unsafe { sys::BN_mod_exp_mont_consttime(r.0, b.0, e.0, m.0, ctx.0, core::ptr::null()) };
    if ok != 1 {
        return None;
    }
    r.to_be_padded(p.len())
}

/// g^x mod p with g = 2.
pub fn public(group: DhGroup, x: &[u8]) -> Option<Vec<u8>> {
    let p = prime(group)?;
    mod_exp(&[2], x, &p).map(|v| v.to_vec())
}

/// y^x mod p after checking 1 < y < p - 1 (RFC 7296 §2.12 and SP 800-56A range check).
pub fn shared(group: DhGroup, x: &[u8], y: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let p = prime(group)?;
    if y.len() != p.len() {
        return None;
    }
    // Big-endian equal-length comparison: y > 1 and y < p - 1.
    let mut one = vec![0u8; p.len()];
    *one.last_mut()? = 1;
    let mut pm1 = p.clone();
    *pm1.last_mut()? -= 1; // p ends in 0xFF
    if y <= &one[..] || y >= &pm1[..] {
        return None;
    }
    mod_exp(y, x, &p)
}

/// Whether `p` and (p-1)/2 are both (probable) primes: the RFC 3526 sanity check.
#[cfg(test)]
pub fn is_safe_prime(p: &[u8]) -> bool {
    let (Some(bp), Some(q), Some(ctx)) = (Bn::from_be(p), Bn::new(), Ctx::new()) else {
        return false;
    };
    let mut a = 0;
    let mut b = 0;
    // SAFETY: valid owned BIGNUMs and context; out-parameters are local ints.
    unsafe {
        if sys::BN_rshift1(q.0, bp.0) != 1 {
            return false;
        }
        if sys::BN_primality_test(&mut a, bp.0, 32, ctx.0, 0, core::ptr::null_mut()) != 1 {
            return false;
        }
        if sys::BN_primality_test(&mut b, q.0, 32, ctx.0, 0, core::ptr::null_mut()) != 1 {
            return false;
        }
    }
    a == 1 && b == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3526 / RFC 2409 sanity: the constants are the documented safe primes, the 2048-bit
    // one equals aws-lc's own copy, and exchanges agree.
    #[test]
    fn primes_are_safe_primes() {
        for g in [DhGroup::Modp1024, DhGroup::Modp2048] {
            let p = prime(g).unwrap();
            assert_eq!(p.len(), g.public_len());
            assert!(is_safe_prime(&p), "{g:?}");
        }
        let theirs = Bn::new().unwrap();
        // SAFETY: BN_get_rfc3526_prime_2048 writes into the valid BIGNUM we pass.
        let r = unsafe { sys::BN_get_rfc3526_prime_2048(theirs.0) };
        assert!(!r.is_null());
        assert_eq!(
            &theirs.to_be_padded(256).unwrap()[..],
            &prime(DhGroup::Modp2048).unwrap()[..]
        );
    }

    #[test]
    fn modp_agreement_and_range_checks() {
        for g in [DhGroup::Modp1024, DhGroup::Modp2048] {
            let a = [0x11u8; EXPONENT_LEN];
            let b = [0x7fu8; EXPONENT_LEN];
            let ga = public(g, &a).unwrap();
            let gb = public(g, &b).unwrap();
            assert_eq!(shared(g, &a, &gb).unwrap(), shared(g, &b, &ga).unwrap());
            let p = prime(g).unwrap();
            let mut one = vec![0u8; p.len()];
            *one.last_mut().unwrap() = 1;
            assert!(shared(g, &a, &one).is_none());
            assert!(shared(g, &a, &p).is_none());
            let mut pm1 = p.clone();
            *pm1.last_mut().unwrap() -= 1;
            assert!(shared(g, &a, &pm1).is_none());
            assert!(shared(g, &a, &ga[1..]).is_none());
            // 2^x for a tiny exponent is exact.
            let four = public(g, &[2]).unwrap();
            assert_eq!(four[four.len() - 1], 4);
        }
    }
}
