//! What the pure model needs from the outside world, passed in: the time, randomness and the
//! operator's configuration.

use ipnet::IpNet;

/// Operator configuration that shapes validation and allocation.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where public IP addresses come from (`vnet serve --public-ip-pool`).
    pub public_ip_pools: Vec<IpNet>,
}

/// One write's view of the world outside the model.
pub struct Ctx<'a> {
    pub config: &'a Config,
    /// RFC 3339 time of the request.
    pub now: String,
    /// A source of random 128-bit values (GUIDs, etags, generated keys).
    pub rng: &'a mut dyn FnMut() -> u128,
}

impl Ctx<'_> {
    /// A random GUID in Azure's lower-case 8-4-4-4-12 form (version 4 bits set).
    pub fn guid(&mut self) -> String {
        let mut v = (self.rng)();
        v = (v & !(0xf << 76)) | (0x4 << 76);
        v = (v & !(0x3 << 62)) | (0x2 << 62);
        let h = format!("{v:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
    /// A fresh weak etag.
    pub fn etag(&mut self) -> String {
        format!("W/\"{}\"", self.guid())
    }
    /// A random key of `len` letters and digits (generated shared keys).
    pub fn secret(&mut self, len: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(len);
        let mut pool = 0u128;
        let mut left = 0;
        while out.len() < len {
            if left == 0 {
                pool = (self.rng)();
                left = 21; // 21 draws of 6 bits from 128 bits
            }
            let i = (pool & 0x3f) as usize;
            pool >>= 6;
            left -= 1;
            if i < A.len() {
                out.push(A[i] as char);
            }
        }
        out
    }
}
