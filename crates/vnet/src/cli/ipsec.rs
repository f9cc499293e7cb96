//! `vnet ipsec up`: one IKEv2/IPsec tunnel to a peer, standalone. The `ike` engine negotiates,
//! the `esp` engine protects packets; this module is the IO around them: UDP sockets on 500
//! and 4500, a TUN device with routes to the remote selectors, one epoll loop.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;

/// `vnet ipsec …`
#[derive(Debug, clap::Subcommand)]
pub enum IpsecCommand {
    /// Negotiate a tunnel with a peer, install it on a TUN device and carry its traffic.
    Up(Box<IpsecUpArgs>),
}

/// Options of `vnet ipsec up`.
#[derive(Debug, Args)]
pub struct IpsecUpArgs {
    /// Our underlay address (IKE on UDP 500 and 4500).
    #[arg(long)]
    pub local: IpAddr,
    /// The peer's underlay address.
    #[arg(long)]
    pub remote: IpAddr,
    /// File holding the pre-shared key (trailing newline ignored). Needed unless both sides
    /// use certificates (--cert/--key and --ca).
    #[arg(long)]
    pub psk_file: Option<std::path::PathBuf>,
    /// Authenticate with this certificate (PEM; ours first, then intermediates to send)
    /// instead of the pre-shared key. Our identity defaults to its subject DN.
    #[arg(long, requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// Initiator (remote-access client): ask the responder for an inner IPv4 address, put it
    /// on the TUN device and send from it (--local-ts defaults to 0.0.0.0/0).
    #[arg(long, requires = "initiator")]
    pub request_vip: bool,
    /// Responder (gateway): give initiators that ask an inner address from this IPv4 CIDR
    /// (--remote-ts defaults to it).
    #[arg(long, requires = "responder")]
    pub pool: Option<String>,
    /// Responder: DNS server to tell pool clients (repeatable).
    #[arg(long, requires = "pool")]
    pub dns: Vec<std::net::Ipv4Addr>,
    /// The ECDSA P-256 private key of --cert (PEM, PKCS#8).
    #[arg(long, requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Require the peer to authenticate with a certificate issued by a CA in this PEM file
    /// (instead of the pre-shared key).
    #[arg(long)]
    pub ca: Option<std::path::PathBuf>,
    /// Our side's traffic selectors, CIDR[,CIDR…].
    #[arg(long, value_delimiter = ',')]
    pub local_ts: Vec<String>,
    /// The peer's traffic selectors, CIDR[,CIDR…]; routed into the tunnel.
    #[arg(long, value_delimiter = ',')]
    pub remote_ts: Vec<String>,
    /// IKE proposals in strongSwan syntax, comma-separated, in preference order.
    #[arg(
        long,
        default_value = "aes256gcm16-prfsha256-ecp256,aes128gcm16-prfsha256-x25519,aes256-sha256-modp2048,aes256-sha1-modp1024"
    )]
    pub ike_proposals: String,
    /// ESP proposals in strongSwan syntax (a DH group means PFS on rekeys).
    #[arg(
        long,
        default_value = "aes256gcm16,aes128gcm16,aes256-sha256,aes256-sha1"
    )]
    pub esp_proposals: String,
    /// Start the negotiation.
    #[arg(long, conflicts_with = "responder")]
    pub initiator: bool,
    /// Wait for the peer to start.
    #[arg(long)]
    pub responder: bool,
    /// Responder: answer IKE_SA_INIT statelessly with a COOKIE (RFC 7296 §2.6) while this
    /// many IKE SAs are half-open (0: always); the secret rotates every two minutes.
    #[arg(long, requires = "responder")]
    pub cookie_threshold: Option<usize>,
    /// Liveness check interval in seconds.
    #[arg(long)]
    pub dpd: Option<u64>,
    /// Our IKE identity (default: the local address).
    #[arg(long)]
    pub local_id: Option<String>,
    /// The identity the peer must prove (default: any).
    #[arg(long)]
    pub remote_id: Option<String>,
    /// TUN device name.
    #[arg(long, default_value = "ipsec0")]
    pub tun: String,
    /// Rekey the Child SA after this many seconds.
    #[arg(long)]
    pub child_rekey: Option<u64>,
    /// Rekey the IKE SA after this many seconds.
    #[arg(long)]
    pub ike_rekey: Option<u64>,
    /// Exit 0 once the Child SA is up (negotiation check only, no data path).
    #[arg(long)]
    pub exit_when_up: bool,
    /// First retransmission timeout of an IKE request in milliseconds, doubled on each
    /// retry; with --retransmit-tries it bounds how fast a dead peer is noticed.
    #[arg(long, default_value_t = 2000)]
    pub retransmit_timeout_ms: u64,
    /// Retransmissions of an IKE request (liveness checks included) before giving up.
    #[arg(long, default_value_t = 5)]
    pub retransmit_tries: u32,
    /// DEBUG ONLY: print every Child SA's ESP keys as Wireshark `esp_sa` table rows
    /// (`TSHARK_ESP_SA …` lines on stdout) so that a capture can be decrypted. Never on by
    /// default; anyone who sees the output can read the tunnel's traffic.
    #[arg(long)]
    pub print_keys_for_tshark: bool,
}

fn err(msg: impl Into<String>) -> CliError {
    CliError::new("IpsecError", msg.into())
}

/// Every certificate of a PEM file, DER.
fn pem_certs(f: &std::path::Path) -> Result<Vec<Vec<u8>>, CliError> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(f)
        .and_then(|it| it.map(|c| c.map(|c| c.to_vec())).collect())
        .map_err(|e| err(format!("{}: {e}", f.display())))
}

/// Our certificate chain and PKCS#8 ECDSA key from PEM files.
fn load_cert(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<std::sync::Arc<ike::cert::LocalCert>, CliError> {
    use rustls_pki_types::pem::PemObject;
    let k = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_file(key).map_err(|e| {
        err(format!(
            "{}: {e} (a PKCS#8 \"PRIVATE KEY\" is needed: openssl pkcs8 -topk8 -nocrypt)",
            key.display()
        ))
    })?;
    ike::cert::LocalCert::new(pem_certs(cert)?, k.secret_pkcs8_der())
        .map(std::sync::Arc::new)
        .map_err(|e| err(format!("{}: {e}", cert.display())))
}

/// The CA certificates a peer's certificate must chain to.
fn load_cas(f: &std::path::Path) -> Result<std::sync::Arc<ike::cert::TrustAnchors>, CliError> {
    ike::cert::TrustAnchors::new(pem_certs(f)?)
        .map(std::sync::Arc::new)
        .map_err(|e| err(format!("{}: {e}", f.display())))
}

struct Tunnel {
    outbound: Option<(u32, esp::OutboundSa, SocketAddr, SocketAddr)>,
    inbound: HashMap<u32, esp::InboundSa>,
}

fn esp_suite(s: &ike::Suite) -> Result<esp::EspSuite, CliError> {
    esp::EspSuite::from_ikev2(
        s.encr.ikev2_id(),
        s.encr.key_bits(),
        s.integ.map(|i| i.ikev2_id()),
    )
    .map_err(|e| err(format!("ESP suite {s} not supported by the data path: {e}")))
}

fn install(t: &mut Tunnel, c: &ike::ChildSa, now: Instant) -> Result<(), CliError> {
    let suite = esp_suite(&c.suite)?;
    let kin = esp::SaKeys::from_keymat(suite, &c.keys_in).map_err(|e| err(e.to_string()))?;
    let kout = esp::SaKeys::from_keymat(suite, &c.keys_out).map_err(|e| err(e.to_string()))?;
    let mut cin = esp::SaConfig::new(c.spi_in, kin);
    cin.esn = c.suite.esn;
    let mut cout = esp::SaConfig::new(c.spi_out, kout);
    cout.esn = c.suite.esn;
    let mut rng = ike::SystemRng;
    let iv: Box<dyn esp::IvSource + Send> =
        Box::new(move |b: &mut [u8]| ike::Rng::fill(&mut rng, b));
    let out = esp::OutboundSa::new(cout, now, Some(iv)).map_err(|e| err(e.to_string()))?;
    let inb = esp::InboundSa::new(cin, now).map_err(|e| err(e.to_string()))?;
    t.inbound.insert(c.spi_in, inb);
    t.outbound = Some((c.spi_out, out, c.local, c.remote));
    Ok(())
}

/// Wireshark `esp_sa` UAT rows (protocol, source, destination, SPI, encryption algorithm,
/// key, authentication algorithm, key) for both directions of a Child SA.
fn tshark_rows(c: &ike::ChildSa) -> Result<Vec<String>, CliError> {
    let suite = esp_suite(&c.suite)?;
    let encr = match suite.encr() {
        esp::EncrAlg::AesGcm128 | esp::EncrAlg::AesGcm256 => "AES-GCM with 16 octet ICV [RFC4106]",
        esp::EncrAlg::ChaCha20Poly1305 => "ChaCha20 with Poly1305 [RFC7634]",
        esp::EncrAlg::AesCbc128 | esp::EncrAlg::AesCbc256 => "AES-CBC [RFC3602]",
        esp::EncrAlg::Null => "NULL",
    };
    let integ = match suite.integ() {
        None => "NULL",
        Some(esp::IntegAlg::HmacSha1_96) => "HMAC-SHA-1-96 [RFC2404]",
        Some(esp::IntegAlg::HmacSha256_128) => "HMAC-SHA-256-128 [RFC4868]",
        Some(esp::IntegAlg::HmacSha384_192) => "HMAC-SHA-384-192 [RFC4868]",
        Some(esp::IntegAlg::HmacSha512_256) => "HMAC-SHA-512-256 [RFC4868]",
    };
    let hex = |b: &[u8]| -> String { b.iter().map(|x| format!("{x:02x}")).collect() };
    let row = |src: IpAddr, dst: IpAddr, spi: u32, k: &[u8]| -> String {
        let fam = if src.is_ipv4() { "IPv4" } else { "IPv6" };
        let (ek, ak) = k.split_at(suite.encr_key_len().min(k.len()));
        let ak = if ak.is_empty() {
            String::new()
        } else {
            format!("0x{}", hex(ak))
        };
        format!(
            "\"{fam}\",\"{src}\",\"{dst}\",\"0x{spi:08x}\",\"{encr}\",\"0x{}\",\"{integ}\",\"{ak}\"",
            hex(ek)
        )
    };
    Ok(vec![
        row(c.local.ip(), c.remote.ip(), c.spi_out, &c.keys_out),
        row(c.remote.ip(), c.local.ip(), c.spi_in, &c.keys_in),
    ])
}

/// A Wireshark `ikev2_decryption_table` UAT row for the engine's current IKE SA.
fn tshark_ike_row(ike: &ike::Ike) -> Option<String> {
    let (spi_i, spi_r, suite, [ei, er, ai, ar]) = ike.ike_keys_for_debug()?;
    let encr = match suite.encr {
        ike::Encr::AesCbc128 => "AES-CBC-128 [RFC3602]",
        ike::Encr::AesCbc256 => "AES-CBC-256 [RFC3602]",
        ike::Encr::AesGcm16_128 => "AES-GCM-128 with 16 octet ICV [RFC5282]",
        ike::Encr::AesGcm16_256 => "AES-GCM-256 with 16 octet ICV [RFC5282]",
        ike::Encr::ChaCha20Poly1305 => return None, // not in Wireshark's IKEv2 table
    };
    let integ = match suite.integ {
        None => "NONE [RFC4306]",
        Some(ike::Integ::HmacSha1_96) => "HMAC_SHA1_96 [RFC2404]",
        Some(ike::Integ::HmacSha256_128) => "HMAC_SHA2_256_128 [RFC4868]",
        Some(ike::Integ::HmacSha384_192) => "HMAC_SHA2_384_192 [RFC4868]",
        Some(ike::Integ::HmacSha512_256) => "HMAC_SHA2_512_256 [RFC4868]",
    };
    let hex = |b: &[u8]| -> String { b.iter().map(|x| format!("{x:02x}")).collect() };
    // Byte fields unquoted hex, text fields quoted (the UAT file syntax).
    Some(format!(
        "{spi_i:016x},{spi_r:016x},{},{},\"{encr}\",{},{},\"{integ}\"",
        hex(ei),
        hex(er),
        hex(ai),
        hex(ar)
    ))
}

fn ip(args: &[&str]) -> Result<(), CliError> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| err(format!("ip {}: {e}", args.join(" "))))?;
    if st.success() {
        Ok(())
    } else {
        Err(err(format!("ip {} failed", args.join(" "))))
    }
}

/// Completes a partial checksum the kernel left for offload (virtio_net_hdr NEEDS_CSUM).
fn finish_csum(hdr: &[u8], pkt: &mut [u8]) {
    if hdr[0] & 1 == 0 {
        return;
    }
    let start = u16::from_le_bytes([hdr[6], hdr[7]]) as usize;
    let off = u16::from_le_bytes([hdr[8], hdr[9]]) as usize;
    if start + off + 2 > pkt.len() {
        return;
    }
    let mut sum: u32 = 0;
    for c in pkt[start..].chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let v = !(sum as u16);
    pkt[start + off..start + off + 2].copy_from_slice(&v.to_be_bytes());
}

pub fn up(a: IpsecUpArgs) -> Result<(), CliError> {
    use ike::{Config, Event, Identity, Ike, Kind, ProposalSpec, Role, State};
    if a.initiator == a.responder {
        return Err(err("say --initiator or --responder"));
    }
    let psk =
        match &a.psk_file {
            Some(f) => {
                let psk = std::fs::read(f).map_err(|e| err(format!("{}: {e}", f.display())))?;
                psk.strip_suffix(b"\n").unwrap_or(&psk).to_vec()
            }
            None if a.cert.is_some() && a.ca.is_some() => Vec::new(),
            None => return Err(err(
                "--psk-file is needed unless both sides use certificates (--cert, --key and --ca)",
            )),
        };
    let cert = a
        .cert
        .as_ref()
        .zip(a.key.as_ref())
        .map(|(c, k)| load_cert(c, k))
        .transpose()?;
    let trust = a.ca.as_ref().map(|f| load_cas(f)).transpose()?;
    let parse_ts = |v: &[String]| -> Result<Vec<ike::TrafficSelector>, CliError> {
        v.iter()
            .map(|s| ike::ts::parse_cidr(s).ok_or_else(|| err(format!("bad CIDR {s}"))))
            .collect()
    };
    let role = if a.initiator {
        Role::Initiator
    } else {
        Role::Responder
    };
    let local_id = match (a.local_id.as_deref(), &cert) {
        (Some(id), _) => Identity::parse(id),
        (None, Some(c)) => c.identity(),
        (None, None) => Identity::Addr(a.local),
    };
    let mut cfg = Config::new(role, local_id, psk);
    cfg.cert = cert;
    cfg.trust = trust;
    cfg.unix_time = Some((
        Instant::now(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| err(e.to_string()))?
            .as_secs(),
    ));
    cfg.remote_id = a.remote_id.as_deref().map(Identity::parse);
    cfg.ike_proposals =
        ProposalSpec::parse_list(Kind::Ike, &a.ike_proposals).map_err(|e| err(e.0))?;
    cfg.esp_proposals =
        ProposalSpec::parse_list(Kind::Esp, &a.esp_proposals).map_err(|e| err(e.0))?;
    cfg.local_ts = parse_ts(&a.local_ts)?;
    cfg.remote_ts = parse_ts(&a.remote_ts)?;
    if a.request_vip {
        cfg.request_vip = true;
        if cfg.local_ts.is_empty() {
            cfg.local_ts = parse_ts(&["0.0.0.0/0".to_string()])?;
        }
    }
    if let Some(pool) = &a.pool {
        let net: ipnet::Ipv4Net = pool
            .parse()
            .map_err(|e| err(format!("--pool {pool}: {e}")))?;
        if cfg.remote_ts.is_empty() {
            cfg.remote_ts = parse_ts(std::slice::from_ref(pool))?;
        }
        cfg.vip_pool = Some(std::sync::Arc::new(Pool::new(net)));
        cfg.vip_dns = a.dns.clone();
    }
    if cfg.local_ts.is_empty() || cfg.remote_ts.is_empty() {
        return Err(err("--local-ts and --remote-ts are required"));
    }
    cfg.dpd = a.dpd.map(Duration::from_secs);
    cfg.child_rekey = a.child_rekey.map(Duration::from_secs);
    cfg.ike_rekey = a.ike_rekey.map(Duration::from_secs);
    cfg.retransmit_timeout = Duration::from_millis(a.retransmit_timeout_ms.max(1));
    cfg.retransmit_tries = a.retransmit_tries;
    if a.print_keys_for_tshark {
        eprintln!("ipsec: WARNING --print-keys-for-tshark prints the ESP keys (debugging only)");
    }
    // The data path is userspace ESP in UDP: always encapsulate (RFC 3948).
    cfg.force_encap = true;

    let s500 = UdpSocket::bind(SocketAddr::new(a.local, 500))
        .map_err(|e| err(format!("bind {}:500: {e}", a.local)))?;
    let s4500 = UdpSocket::bind(SocketAddr::new(a.local, 4500))
        .map_err(|e| err(format!("bind {}:4500: {e}", a.local)))?;
    s500.set_nonblocking(true).map_err(|e| err(e.to_string()))?;
    s4500
        .set_nonblocking(true)
        .map_err(|e| err(e.to_string()))?;
    // ESP arrives in bursts of a TCP window: the default ~200 KiB of socket buffer drops
    // packets (and TCP halves its rate) long before a core is busy.
    big_buffers(s4500.as_raw_fd());
    let tun = if a.exit_when_up {
        None
    } else {
        let fd = agent::sys::tun_queue(&a.tun).map_err(|e| err(format!("TUN {}: {e}", a.tun)))?;
        // One packet per read: the ESP path seals packets, not GSO super-packets.
        agent::sys::tun_no_gso(fd.as_raw_fd())
            .map_err(|e| err(format!("TUN {} offloads: {e}", a.tun)))?;
        ip(&["link", "set", &a.tun, "mtu", "1400", "up"])?;
        Some(fd)
    };
    let ep = agent::sys::Epoll::new().map_err(|e| err(e.to_string()))?;
    ep.add(s500.as_raw_fd(), 0)
        .map_err(|e| err(e.to_string()))?;
    ep.add(s4500.as_raw_fd(), 1)
        .map_err(|e| err(e.to_string()))?;
    if let Some(t) = &tun {
        ep.add(t.as_raw_fd(), 2).map_err(|e| err(e.to_string()))?;
    }

    let start = Instant::now();
    let mut ike = Ike::new(
        cfg,
        SocketAddr::new(a.local, 500),
        SocketAddr::new(a.remote, 500),
        Box::new(ike::SystemRng),
        start,
    );
    if a.initiator {
        ike.connect(start);
    }
    let mut gate = a.cookie_threshold.map(|threshold| {
        ike::CookieGate::new(
            ike::CookieConfig {
                threshold,
                ..ike::CookieConfig::default()
            },
            Box::new(ike::SystemRng),
            start,
        )
    });
    let mut tunnel = Tunnel {
        outbound: None,
        inbound: HashMap::new(),
    };
    let mut routed = false;
    let mut established = false;
    let mut buf = vec![0u8; 65536];
    let mut out = vec![0u8; 65536 + 128];
    let mut batch = agent::sys::UdpBatch::new();
    let mut evs = vec![libc_event(); 16];
    loop {
        let now = Instant::now();
        while let Some(t) = ike.poll_transmit() {
            let sock = if t.src.port() == 500 { &s500 } else { &s4500 };
            let _ = sock.send_to(&t.payload, t.dst);
        }
        while let Some(e) = ike.poll_event() {
            match e {
                Event::IkeSaUp {
                    spi_i,
                    spi_r,
                    suite,
                    local,
                    remote,
                    nat_local,
                    nat_remote,
                    remote_id,
                    rekeyed,
                } => {
                    println!(
                        "IKE_SA {} {spi_i:016x}_i {spi_r:016x}_r {suite} {local} <-> {remote}{}{} peer {}",
                        if rekeyed { "REKEYED" } else { "ESTABLISHED" },
                        if nat_local { " nat-local" } else { "" },
                        if nat_remote { " nat-remote" } else { "" },
                        remote_id.map_or("?".into(), |i| i.to_string()),
                    );
                    if a.print_keys_for_tshark {
                        if let Some(r) = tshark_ike_row(&ike) {
                            println!("TSHARK_IKEV2_SA {r}");
                        }
                    }
                }
                Event::VirtualIp { addr, dns, ours } => {
                    let dns: Vec<String> = dns.iter().map(|d| d.to_string()).collect();
                    if ours {
                        println!("VIRTUAL_IP {addr} assigned to us (dns {})", dns.join(","));
                        if tun.is_some() {
                            ip(&["addr", "replace", &format!("{addr}/32"), "dev", &a.tun])?;
                        }
                    } else {
                        println!("VIRTUAL_IP {addr} assigned to the peer");
                    }
                }
                Event::ChildSaUp(c) => {
                    let lts: Vec<String> = c.local_ts.iter().map(ike::ts::display).collect();
                    let rts: Vec<String> = c.remote_ts.iter().map(ike::ts::display).collect();
                    println!(
                        "CHILD_SA INSTALLED {:08x}_i {:08x}_o {} {} === {}{}",
                        c.spi_in,
                        c.spi_out,
                        c.suite,
                        lts.join(","),
                        rts.join(","),
                        if c.encap { " udp-encap" } else { "" }
                    );
                    established = true;
                    if a.print_keys_for_tshark {
                        for r in tshark_rows(&c)? {
                            println!("TSHARK_ESP_SA {r}");
                        }
                    }
                    if a.exit_when_up {
                        return Ok(());
                    }
                    if !c.encap {
                        return Err(err(
                            "peer refused UDP encapsulation; raw ESP is not supported",
                        ));
                    }
                    install(&mut tunnel, &c, now)?;
                    if !routed {
                        for t in &c.remote_ts {
                            for (addr, len) in ike::ts::to_cidrs(t) {
                                ip(&["route", "replace", &format!("{addr}/{len}"), "dev", &a.tun])?;
                            }
                        }
                        routed = true;
                    }
                }
                Event::ChildSaDown {
                    spi_in,
                    spi_out,
                    reason,
                } => {
                    println!("CHILD_SA DELETED {spi_in:08x}_i {spi_out:08x}_o ({reason})");
                    tunnel.inbound.remove(&spi_in);
                    if tunnel.outbound.as_ref().is_some_and(|o| o.0 == spi_out) {
                        tunnel.outbound = None;
                        if let Some(c) = ike.child_sas().last() {
                            let c = c.clone();
                            install(&mut tunnel, &c, now)?;
                        }
                    }
                }
                Event::Failed(e) => {
                    eprintln!("ipsec: {e}");
                    if !established {
                        return Err(err(format!("negotiation failed: {e}")));
                    }
                }
                Event::Closed { reason } => {
                    println!("IKE_SA CLOSED: {reason}");
                    return Err(err(format!("IKE SA closed: {reason}")));
                }
            }
        }
        let timeout = ike.poll_timeout().map_or(1000, |t| {
            t.saturating_duration_since(now).as_millis().min(1000) as i32
        });
        let n = ep.wait(&mut evs, timeout.max(1));
        let now = Instant::now();
        // Authentic ESP proves the peer alive: no liveness check while it flows.
        let mut esp_seen = false;
        if ike.poll_timeout().is_some_and(|t| t <= now) {
            ike.handle_timeout(now);
        }
        for ev in evs.iter().take(n) {
            let token = ev.u64;
            match token {
                0 | 1 => {
                    let sock = if token == 0 { &s500 } else { &s4500 };
                    while let Ok((len, src)) = sock.recv_from(&mut buf) {
                        let dst = sock.local_addr().map_err(|e| err(e.to_string()))?;
                        let d = &mut buf[..len];
                        if token == 1 && len >= 8 && d[..4] != [0, 0, 0, 0] {
                            if len == 1 && d[0] == 0xff {
                                continue; // NAT keepalive
                            }
                            let spi = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                            if let (Some(sa), Some(t)) = (tunnel.inbound.get_mut(&spi), &tun) {
                                match sa.open(now, d) {
                                    Ok(esp::Opened::Packet { payload, .. }) => {
                                        agent::sys::write2(t.as_raw_fd(), &[0u8; 10], &d[payload]);
                                        esp_seen = true;
                                    }
                                    Ok(_) => esp_seen = true, // authentic dummy packet
                                    Err(_) => {}
                                }
                            }
                        } else if len > 1 {
                            // Before the session holds any state, the stateless front end
                            // decides whether an IKE_SA_INIT needs a cookie first.
                            if let Some(g) = gate.as_mut().filter(|_| ike.state() == State::Idle) {
                                // One session: nothing is half-open while it is idle.
                                g.set_half_open(0);
                                match g.handle(now, src, dst, d) {
                                    ike::Verdict::Accept => {}
                                    ike::Verdict::Reply(t) => {
                                        let _ = sock.send_to(&t.payload, t.dst);
                                        continue;
                                    }
                                    ike::Verdict::Drop => continue,
                                }
                            }
                            ike.handle_datagram(now, src, dst, d);
                        }
                    }
                }
                _ => {
                    let Some(t) = &tun else { continue };
                    // Sealed packets to an IPv4 peer leave in batches (one sendmmsg each).
                    let mut to4 = None;
                    while let Some(len) = agent::sys::read(t.as_raw_fd(), &mut buf) {
                        if len <= 10 || buf[1] != 0 {
                            continue; // no GSO super-packets on this path
                        }
                        let (hdr, pkt) = buf.split_at_mut(10);
                        let pkt = &mut pkt[..len - 10];
                        finish_csum(hdr, pkt);
                        let Some((_, sa, _, remote)) = tunnel.outbound.as_mut() else {
                            continue;
                        };
                        let nh = if pkt[0] >> 4 == 6 {
                            esp::NEXT_HEADER_IPV6
                        } else {
                            esp::NEXT_HEADER_IPV4
                        };
                        match remote.ip() {
                            IpAddr::V4(ip) => {
                                // One outbound SA (one peer) per read loop: flush when full.
                                let dst = std::net::SocketAddrV4::new(ip, 4500);
                                if batch.slot().is_none() {
                                    batch.flush(s4500.as_raw_fd(), dst);
                                }
                                to4 = Some(dst);
                                if let Some(slot) = batch.slot() {
                                    if let Ok(m) = sa.seal(now, pkt, nh, slot) {
                                        batch.commit(m);
                                    }
                                }
                            }
                            IpAddr::V6(_) => {
                                if let Ok(m) = sa.seal(now, pkt, nh, &mut out) {
                                    let _ = s4500
                                        .send_to(&out[..m], SocketAddr::new(remote.ip(), 4500));
                                }
                            }
                        }
                    }
                    if let Some(d) = to4 {
                        batch.flush(s4500.as_raw_fd(), d);
                    }
                }
            }
        }
        if esp_seen {
            ike.note_inbound_esp(now);
        }
    }
}

/// Inner addresses for remote-access clients: the lowest free host address of a CIDR, the
/// same one again for a client that comes back while it is still free.
struct Pool {
    net: ipnet::Ipv4Net,
    state: std::sync::Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    used: std::collections::BTreeSet<std::net::Ipv4Addr>,
    last: HashMap<String, std::net::Ipv4Addr>,
}

impl Pool {
    fn new(net: ipnet::Ipv4Net) -> Pool {
        Pool {
            net,
            state: Default::default(),
        }
    }
}

impl ike::cp::AddressPool for Pool {
    fn assign(&self, peer: &ike::Identity) -> Option<std::net::Ipv4Addr> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = peer.to_string();
        if let Some(a) = st.last.get(&key).copied().filter(|a| !st.used.contains(a)) {
            st.used.insert(a);
            return Some(a);
        }
        let a = self.net.hosts().find(|a| !st.used.contains(a))?;
        st.used.insert(a);
        st.last.insert(key, a);
        Some(a)
    }

    fn release(&self, addr: std::net::Ipv4Addr) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.used.remove(&addr);
    }
}

/// 4 MiB send and receive buffers (beyond rmem_max/wmem_max when we are root).
fn big_buffers(fd: i32) {
    let size: libc::c_int = 4 << 20;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        for opt in [force, plain] {
            // SAFETY: a valid socket and a c_int option value of the right size.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
        }
    }
}

fn libc_event() -> libc::epoll_event {
    libc::epoll_event { events: 0, u64: 0 }
}
