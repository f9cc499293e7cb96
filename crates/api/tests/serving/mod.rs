//! A real `api::serve_until` on 127.0.0.1:0 in a thread of its own (its own runtime), stopped
//! when dropped, plus raw HTTP/1.1 helpers for attacking it byte by byte.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Running {
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub https: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Plain HTTP (`insecure_http`) unless `edit` says otherwise.
    pub fn start(edit: impl FnOnce(&mut api::ServeConfig)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cfg = api::ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.clone(),
            insecure_http: true,
            public_ip_pools: vec!["198.18.0.0/24".parse().unwrap()],
            ..Default::default()
        };
        edit(&mut cfg);
        let https = !cfg.insecure_http;
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let r = rt.block_on(api::serve_until(
                cfg,
                move |a| {
                    let _ = addr_tx.send(a);
                },
                async move {
                    let _ = stop_rx.await;
                    "test"
                },
            ));
            rt.shutdown_timeout(Duration::from_secs(2));
            r.map_err(|e| e.to_string())
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => panic!("server did not start: {:?}", thread.join()),
        };
        Running {
            addr,
            data,
            https,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn base(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A blocking client that trusts the data directory's CA and opens a new connection for
    /// every request.
    pub fn client(&self) -> reqwest::blocking::Client {
        let mut b = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(0);
        if self.https {
            let ca = std::fs::read(self.data.join("ca.pem")).unwrap();
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        }
        b.build().unwrap()
    }

    /// The operator's credentials.json.
    pub fn creds(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.data.join("credentials.json")).unwrap())
            .unwrap()
    }

    /// A TLS session to the server, handshake done.
    pub async fn tls_connect(
        &self,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(self.data.join("ca.pem")).unwrap()
        {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
        tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::other("handshake timed out"))?
    }

    /// Stops the server (as a signal would) and returns what `serve_until` returned.
    pub fn stop(&mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap(),
            None => Ok(()),
        }
    }

    /// Stops the server and reads the revision of its store.
    /// Stops the server and lists the keys any commit ever wrote, outside the server's own
    /// bookkeeping (`dp/`: its data-plane instance id).
    pub fn stop_and_written_keys(&mut self) -> Vec<String> {
        self.stop().unwrap();
        use store::Store;
        let s = store::SqliteStore::open(&self.data.join("vnet.db")).unwrap();
        s.events_since(0, 10_000)
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .filter(|k| !k.starts_with("dp/"))
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Whether a TLS session has been closed by the server within `wait`.
pub async fn tls_closed_within(
    s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    wait: Duration,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Reads one HTTP/1.1 response: status, head, body (by Content-Length).
pub fn read_response(s: &mut TcpStream) -> (u16, String, String) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            r => panic!(
                "connection ended inside a response head ({r:?}): {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// One request on a new connection.
pub fn raw_request(addr: SocketAddr, req: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(req).unwrap();
    read_response(&mut s)
}
