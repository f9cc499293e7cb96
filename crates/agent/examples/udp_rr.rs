//! UDP request/response latency, for the data-plane bench: one 1-byte datagram out, wait for
//! its echo, repeat. Unlike `ping -i 0.01`, the next request leaves as soon as the answer is in,
//! so CPUs never fall idle between exchanges and the figure is the path's own cost.
//!
//!   udp_rr server PORT
//!   udp_rr client HOST:PORT COUNT     -> "n=COUNT p10 X median Y p90 Z us"
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") if args.len() == 3 => {
            let s = UdpSocket::bind(("0.0.0.0", args[2].parse().expect("port"))).expect("bind");
            let mut b = [0u8; 64];
            loop {
                if let Ok((n, peer)) = s.recv_from(&mut b) {
                    let _ = s.send_to(&b[..n], peer);
                }
            }
        }
        Some("client") if args.len() == 4 => {
            let n: usize = args[3].parse().expect("count");
            let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
            s.connect(&args[2]).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut b = [0u8; 64];
            let mut t = Vec::with_capacity(n);
            for _ in 0..n {
                let t0 = Instant::now();
                s.send(&b[..1]).expect("send");
                if s.recv(&mut b).is_err() {
                    eprintln!("udp_rr: no answer within 1 s");
                    std::process::exit(1);
                }
                t.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            t.sort_by(f64::total_cmp);
            println!(
                "n={n} p10 {:.1} median {:.1} p90 {:.1} us",
                t[n / 10],
                t[n / 2],
                t[n * 9 / 10]
            );
        }
        _ => {
            eprintln!("usage: udp_rr server PORT | udp_rr client HOST:PORT COUNT");
            std::process::exit(2);
        }
    }
}
