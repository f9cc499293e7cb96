//! Issue 9 item 5: connections are bounded. A real `api::serve_until` on 127.0.0.1:0, attacked
//! with raw sockets the way the issue's tester did: slow-loris heads, silent connections, idle
//! kept-alive connections, slow bodies, and more idle (TCP and TLS) connections than the cap,
//! while a well-behaved client keeps asking. Timeouts are set small through `ConnLimits` so each
//! test takes seconds.

mod serving;

use serving::{raw_request, Running};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Whether the server has closed `s` (EOF or reset), waiting at most `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

const METADATA: &[u8] =
    b"GET /metadata/endpoints?api-version=2022-09-01 HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn slow_loris_and_silent_clients_are_closed_after_the_header_timeout() {
    let srv = Running::start(|c| {
        c.limits.header_timeout = Duration::from_millis(1000);
        c.limits.idle_timeout = Duration::from_secs(30);
    });
    let addr = srv.addr;
    // Attack 1: 20 clients trickle a request head one byte every 150 ms (a whole head would
    // take ~10 s). Attack 2: 10 clients connect and send nothing at all.
    let start = Instant::now();
    let loris: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let head = b"PUT /subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/g?api-version=2025-07-01 HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n";
                let t0 = Instant::now();
                for b in head.iter() {
                    if s.write_all(&[*b]).is_err() {
                        return Some(t0.elapsed());
                    }
                    if closed_within(&mut s, Duration::from_millis(150)) {
                        return Some(t0.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    let mut silent: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Meanwhile a well-behaved client is answered, promptly, on fresh connections.
    for _ in 0..5 {
        let t = Instant::now();
        let (status, _, body) = raw_request(addr, METADATA);
        assert_eq!(status, 200, "{body}");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    for h in loris {
        let closed = h
            .join()
            .unwrap()
            .expect("a slow-loris client was never closed");
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_millis(3000),
            "slow-loris closed after {closed:?}, the header timeout is 1 s"
        );
    }
    for s in &mut silent {
        assert!(
            closed_within(
                s,
                Duration::from_secs(4)
                    .saturating_sub(start.elapsed())
                    .max(Duration::from_millis(10))
            ),
            "a silent connection outlived the header timeout"
        );
    }
    // Nothing the slow clients started was written.
    let (status, _, _) = raw_request(
        addr,
        b"GET /subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/g?api-version=2025-07-01 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(status, 404);
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let srv = Running::start(|c| {
        c.limits.header_timeout = Duration::from_secs(30);
        c.limits.idle_timeout = Duration::from_millis(800);
    });
    let mut s = TcpStream::connect(srv.addr).unwrap();
    // Two requests on one connection: keep-alive works while the client is active...
    for _ in 0..2 {
        s.write_all(METADATA).unwrap();
        let (status, _, _) = serving::read_response(&mut s);
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    // ...and once it goes quiet the server closes it after the idle timeout, not before.
    let t = Instant::now();
    assert!(!closed_within(&mut s, Duration::from_millis(300)));
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "idle connection kept open"
    );
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn slow_request_bodies_get_408_and_change_nothing() {
    let mut srv = Running::start(|c| {
        c.limits.body_timeout = Duration::from_millis(800);
    });
    let mut s = TcpStream::connect(srv.addr).unwrap();
    // The head is complete and promises 200 bytes; the body trickles in far too slowly.
    let body = br#"{"location": "westeurope", "tags": {"pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
    let head = format!(
        "PUT /subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/slow?api-version=2025-07-01 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let t = Instant::now();
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in body.iter() {
                if w.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let (status, _, answer) = serving::read_response(&mut s);
    assert_eq!(status, 408, "{answer}");
    assert!(answer.contains("RequestTimeout"), "{answer}");
    assert!(
        t.elapsed() >= Duration::from_millis(700) && t.elapsed() < Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    assert!(closed_within(&mut s, Duration::from_secs(2)));
    let _ = writer.join();
    // The refused PUT wrote nothing: no commit of a fresh data directory touched a resource.
    assert_eq!(
        srv.stop_and_written_keys(),
        Vec::<String>::new(),
        "a refused request wrote something"
    );
}

#[test]
fn connections_beyond_the_cap_do_not_lock_out_well_behaved_clients() {
    const CAP: usize = 16;
    // TLS, like `vnet serve` by default; timeouts long enough that only the cap's eviction can
    // make room during the test.
    let srv = Running::start(|c| {
        c.insecure_http = false;
        c.limits.max_connections = Some(CAP);
        c.limits.header_timeout = Duration::from_secs(60);
        c.limits.idle_timeout = Duration::from_secs(60);
        c.limits.tls_handshake_timeout = Duration::from_secs(60);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The attack: 3x the cap in idle connections — plain TCP that never starts TLS, and TLS
    // sessions that completed their handshake and then send nothing.
    let mut idle_tcp: Vec<TcpStream> = (0..CAP * 2)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    let idle_tls = rt.block_on(async {
        let mut v = vec![];
        for _ in 0..CAP {
            // Each arrives at the cap and gets a slot by the eviction of an older idle
            // connection; it may itself be evicted later as the flood goes on (it is idle).
            let t = Instant::now();
            if let Ok(s) = srv.tls_connect().await {
                v.push(s);
            }
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        }
        v
    });
    assert!(
        idle_tls.len() >= CAP / 2,
        "only {} TLS sessions got through",
        idle_tls.len()
    );
    // A well-behaved client (a new connection per request) keeps getting answers, promptly.
    let client = srv.client();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let r = client
            .get(format!(
                "{}/metadata/endpoints?api-version=2022-09-01",
                srv.base()
            ))
            .send()
            .expect("the well-behaved client was locked out");
        assert_eq!(r.status().as_u16(), 200);
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(2),
        "slowest answer {slowest:?}"
    );
    // The server never held more than the cap: most of the idle connections were closed to
    // make room (without a cap all 48 would still be open).
    let still_open = idle_tcp
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(20)))
        .filter(|closed| !closed)
        .count();
    let tls_open = rt.block_on(async {
        let mut n = 0;
        for mut s in idle_tls {
            if !serving::tls_closed_within(&mut s, Duration::from_millis(20)).await {
                n += 1;
            }
        }
        n
    });
    assert!(
        still_open + tls_open <= CAP,
        "{still_open} TCP + {tls_open} TLS idle connections still open, cap {CAP}"
    );
}
