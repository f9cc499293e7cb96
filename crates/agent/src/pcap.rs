//! Classic pcap files (LINKTYPE_RAW: each record is an IPv4 or IPv6 packet), written into
//! memory by a capture session and handed out whole.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 65_535 + 10;

/// The 24-byte file header.
pub fn file_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
    h
}

/// A capture of one NIC's packets (both directions), bounded in size. One buffer per worker
/// so that workers never contend (each takes only its own, uncontended, lock), allocated
/// whole when the capture starts so that recording never allocates: a record that does not
/// fit in what is left is not kept. The buffers are merged in time order at the end.
pub struct Capture {
    per_worker: Vec<Mutex<Vec<u8>>>,
}

impl Capture {
    pub fn new(workers: usize, limit: usize) -> Capture {
        Capture {
            per_worker: (0..workers)
                .map(|_| Mutex::new(Vec::with_capacity(limit / workers.max(1))))
                .collect(),
        }
    }

    /// Records one packet seen by `worker`. Only called while a capture is running.
    pub fn record(&self, worker: usize, pkt: &[u8]) {
        let Some(m) = self.per_worker.get(worker) else {
            return;
        };
        let mut b = m.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() + 16 + pkt.len() > b.capacity() {
            return;
        }
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        b.extend_from_slice(&(t.as_secs() as u32).to_le_bytes());
        b.extend_from_slice(&t.subsec_micros().to_le_bytes());
        b.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        b.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        b.extend_from_slice(pkt);
    }

    /// The pcap file: header, then every record of every worker in time order.
    pub fn finish(&self) -> Vec<u8> {
        let mut recs: Vec<(u64, Vec<u8>)> = Vec::new();
        for m in &self.per_worker {
            let b = std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()));
            let mut off = 0;
            while off + 16 <= b.len() {
                let sec = u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes")) as u64;
                let us =
                    u32::from_le_bytes(b[off + 4..off + 8].try_into().expect("4 bytes")) as u64;
                let len =
                    u32::from_le_bytes(b[off + 8..off + 12].try_into().expect("4 bytes")) as usize;
                recs.push((sec * 1_000_000 + us, b[off..off + 16 + len].to_vec()));
                off += 16 + len;
            }
        }
        recs.sort_by_key(|r| r.0);
        let mut out = file_header().to_vec();
        for (_, r) in recs {
            out.extend_from_slice(&r);
        }
        out
    }
}
