//! HTTPS for the API: a local certificate authority and server certificate made at first start
//! and kept in the data directory, or a certificate the operator provides; and the TLS
//! listener that `axum::serve` runs on.
//!
//! Files in the data directory (private keys are mode 0600):
//!
//! | file | what |
//! |---|---|
//! | `ca.pem` | the CA certificate clients trust (`vnet` CLI, `REQUESTS_CA_BUNDLE`, `connection_verify`) |
//! | `tls/ca-key.pem` | the CA's private key, kept to re-issue the server certificate |
//! | `tls/server.pem`, `tls/server-key.pem` | the server certificate (leaf, then CA) and its key |
//! | `tls/server.json` | the names the server certificate covers and when it expires |
//!
//! The CA is made once and reused for ever (10 years); the server certificate is re-issued from
//! it when the names it must cover change (another `--listen` address) or it nears its end, so
//! clients that trust `ca.pem` keep working across restarts.

use crate::BoxError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Where the server's certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsSource {
    /// A CA and server certificate made and kept in the data directory.
    #[default]
    SelfSigned,
    /// PEM files given by the operator: the certificate chain (leaf first) and its private key.
    Provided { cert: PathBuf, key: PathBuf },
}

/// What TLS setup produced: the rustls configuration and, for messages, the CA file.
pub struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    /// `<data-dir>/ca.pem` when vnet made the certificate; `None` for an operator's certificate.
    pub ca_file: Option<PathBuf>,
    /// Names the server certificate was made for (empty for an operator's certificate).
    pub names: Vec<String>,
}

/// The CA certificate file of a data directory (what clients trust).
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ca.pem")
}

/// Loads or makes the server's certificate and builds the rustls configuration.
pub fn setup(
    data_dir: &Path,
    listen: SocketAddr,
    source: &TlsSource,
) -> Result<TlsSetup, BoxError> {
    let (chain, key, ca_file, names) = match source {
        TlsSource::Provided { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cannot parse the TLS certificate {}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{} holds no certificate", cert.display()).into());
            }
            let k = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the TLS private key {}: {e}", key.display()))?;
            (chain, k, None, vec![])
        }
        TlsSource::SelfSigned => {
            let names = server_names(listen);
            let files = ensure_self_signed(data_dir, &names)?;
            (files.0, files.1, Some(ca_path(data_dir)), names)
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        ca_file,
        names,
    })
}

/// The names a self-made server certificate covers: loopback names, the listen address when it
/// is a specific one, and this machine's host name.
pub fn server_names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim().to_ascii_lowercase();
        let ok = !h.is_empty()
            && h.len() < 254
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if ok && h.parse::<IpAddr>().is_err() && !names.contains(&h) {
            names.push(h);
        }
    }
    names
}

const CA_YEARS: i64 = 10;
const SERVER_DAYS: i64 = 397;
/// A server certificate with less than this left is re-issued at start.
const RENEW_BEFORE_DAYS: i64 = 30;

/// A private file (mode 0600), written atomically ([`crate::datadir::write_private_atomic`]).
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    crate::datadir::write_private_atomic(path, contents.as_bytes())
}

fn write_public(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn at(unix: i64) -> Result<time::OffsetDateTime, BoxError> {
    Ok(time::OffsetDateTime::from_unix_timestamp(unix)?)
}

/// The CA's parameters, rebuilt identically from its key at every start (the subject names the
/// key's fingerprint, so two data directories never make two CAs of the same name).
fn ca_params(key: &KeyPair) -> Result<CertificateParams, BoxError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let fp = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key.subject_public_key_info());
    let short: String = fp.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    p.distinguished_name.push(DnType::OrganizationName, "vnet");
    p.distinguished_name
        .push(DnType::CommonName, format!("vnet local CA {short}"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// Makes (first start) or reuses the CA and server certificate; returns the chain and key.
fn ensure_self_signed(
    dir: &Path,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), BoxError> {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls)?;
    let ca_key_file = tls.join("ca-key.pem");
    let ca_file = ca_path(dir);
    let now = now_unix();
    let ca_key = if ca_key_file.exists() && ca_file.exists() {
        KeyPair::from_pem(&std::fs::read_to_string(&ca_key_file)?)?
    } else {
        let key = KeyPair::generate()?;
        let mut p = ca_params(&key)?;
        p.not_before = at(now - 3600)?;
        p.not_after = at(now + CA_YEARS * 365 * 86400)?;
        let cert = p.self_signed(&key)?;
        write_private(&ca_key_file, &key.serialize_pem())?;
        write_public(&ca_file, &cert.pem())?;
        // A new CA invalidates any older server certificate.
        let _ = std::fs::remove_file(tls.join("server.json"));
        key
    };
    let ca_pem = std::fs::read_to_string(&ca_file)?;
    let meta_file = tls.join("server.json");
    let cert_file = tls.join("server.pem");
    let key_file = tls.join("server-key.pem");
    let meta: Value = std::fs::read_to_string(&meta_file)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let covered: Vec<&str> = meta["names"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fresh = meta["notAfter"]
        .as_i64()
        .is_some_and(|t| t - now > RENEW_BEFORE_DAYS * 86400);
    let reuse = fresh
        && names.iter().all(|n| covered.contains(&n.as_str()))
        && cert_file.exists()
        && key_file.exists();
    if !reuse {
        let mut all: Vec<String> = covered.iter().map(|s| s.to_string()).collect();
        for n in names {
            if !all.contains(n) {
                all.push(n.clone());
            }
        }
        let issuer = Issuer::new(ca_params(&ca_key)?, &ca_key);
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(all.clone())?;
        p.distinguished_name.push(DnType::OrganizationName, "vnet");
        p.distinguished_name.push(DnType::CommonName, "vnet API");
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let not_after = now + SERVER_DAYS * 86400;
        p.not_before = at(now - 3600)?;
        p.not_after = at(not_after)?;
        let cert = p.signed_by(&key, &issuer)?;
        // Forget the old certificate first: a crash between the key and the certificate
        // below must not leave a "fresh" record pairing the new key with the old certificate.
        let _ = std::fs::remove_file(&meta_file);
        write_private(&key_file, &key.serialize_pem())?;
        write_public(&cert_file, &format!("{}{}", cert.pem(), ca_pem))?;
        write_private(
            &meta_file,
            &json!({"names": all, "notAfter": not_after}).to_string(),
        )?;
    }
    let chain = CertificateDer::pem_file_iter(&cert_file)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key_file)?;
    Ok((chain, key))
}

/// A listener that hands `axum::serve` connections whose TLS handshake has completed.
///
/// Handshakes run in their own tasks (with a timeout), so one slow or silent client never holds
/// up the others; failed handshakes are logged at debug level and dropped.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (sock, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await
                    {
                        Ok(Ok(s)) => {
                            let _ = tx.send((s, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = setup(d.path(), listen, &TlsSource::SelfSigned).unwrap();
        assert_eq!(a.ca_file.as_deref(), Some(ca_path(d.path()).as_path()));
        let ca1 = std::fs::read_to_string(ca_path(d.path())).unwrap();
        let srv1 = std::fs::read_to_string(d.path().join("tls/server.pem")).unwrap();
        setup(d.path(), listen, &TlsSource::SelfSigned).unwrap();
        assert_eq!(
            ca1,
            std::fs::read_to_string(ca_path(d.path())).unwrap(),
            "the CA is kept"
        );
        assert_eq!(
            srv1,
            std::fs::read_to_string(d.path().join("tls/server.pem")).unwrap(),
            "the server certificate is kept"
        );
        // Another listen address: same CA, a new server certificate covering both.
        setup(
            d.path(),
            "192.0.2.7:443".parse().unwrap(),
            &TlsSource::SelfSigned,
        )
        .unwrap();
        assert_eq!(ca1, std::fs::read_to_string(ca_path(d.path())).unwrap());
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(d.path().join("tls/server.json")).unwrap(),
        )
        .unwrap();
        let names: Vec<&str> = meta["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"192.0.2.7") && names.contains(&"127.0.0.1"),
            "{names:?}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("tls/ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private keys are not readable by others");
    }

    #[test]
    fn provided_certificate() {
        let d = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["vnet.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(d.path().join("c.pem"), cert.pem()).unwrap();
        std::fs::write(d.path().join("k.pem"), key.serialize_pem()).unwrap();
        let src = TlsSource::Provided {
            cert: d.path().join("c.pem"),
            key: d.path().join("k.pem"),
        };
        let s = setup(d.path(), "127.0.0.1:0".parse().unwrap(), &src).unwrap();
        assert!(s.ca_file.is_none());
        assert!(
            !ca_path(d.path()).exists(),
            "no CA is made when the operator brings a certificate"
        );
        let bad = TlsSource::Provided {
            cert: d.path().join("missing.pem"),
            key: d.path().join("k.pem"),
        };
        assert!(setup(d.path(), "127.0.0.1:0".parse().unwrap(), &bad).is_err());
    }
}
