//! Which TLS roots the SDK's HTTPS client trusts, over a real TLS handshake on a loopback port: the
//! roots compiled in by default (shared/tls-roots, standing in for rustls-native-certs), and a
//! private CA once `SSL_CERT_FILE` or `SSL_CERT_DIR` names it. Each case runs `tls_probe` (one
//! DynamoDB `ListTables` through `adapters::aws`) in its own process, because the SDK reads its roots
//! once per process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tls")
        .join(name)
}

/// Requests answered after a completed handshake, and handshakes the client broke off.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    refused_handshakes: AtomicUsize,
}

/// An HTTPS server for `localhost` with the fixture CA's certificate, answering every request as
/// DynamoDB answers a `ListTables` with no tables.
async fn serve() -> (u16, Arc<Seen>) {
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("server.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server configuration");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counts) = (acceptor.clone(), counts.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    counts.refused_handshakes.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counts.requests.fetch_add(1, Ordering::SeqCst);
                let body = br#"{"TableNames":[]}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n\
                     x-amzn-RequestId: tls-roots\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, seen)
}

/// `tls_probe` against the server, with these root variables and none of the shell's.
fn probe(port: u16, roots: &[(&str, &Path)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tls_probe"));
    for variable in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "AWS_CA_BUNDLE",
        "HTTPS_PROXY",
        "https_proxy",
    ] {
        command.env_remove(variable);
    }
    command
        .env("AWS_ENDPOINT_URL", format!("https://localhost:{port}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("NO_PROXY", "*");
    for (name, value) in roots {
        command.env(name, value);
    }
    let out = command.output().expect("run tls_probe");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_private_ca_is_not_trusted_and_no_request_is_sent() {
    let (port, seen) = serve().await;
    let (ok, output) = tokio::task::spawn_blocking(move || probe(port, &[]))
        .await
        .expect("probe");
    assert!(
        !ok,
        "the compiled-in roots accepted the private CA: {output}"
    );
    assert!(
        output.contains("UnknownIssuer") || output.contains("unknown issuer"),
        "not a certificate failure: {output}"
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    assert!(seen.refused_handshakes.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_file_naming_the_private_ca_makes_the_call_succeed() {
    let (port, seen) = serve().await;
    let ca = fixture("ca.pem");
    let (ok, output) = tokio::task::spawn_blocking(move || probe(port, &[("SSL_CERT_FILE", &ca)]))
        .await
        .expect("probe");
    assert!(ok, "{output}");
    assert_eq!(output.trim(), "ok");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_dir_holding_the_private_ca_makes_the_call_succeed() {
    let (port, seen) = serve().await;
    let dir = std::env::temp_dir().join(format!("tls-roots-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("directory");
    std::fs::copy(fixture("ca.pem"), dir.join("private-ca.pem")).expect("copy");
    let roots = dir.clone();
    let (ok, output) =
        tokio::task::spawn_blocking(move || probe(port, &[("SSL_CERT_DIR", &roots)]))
            .await
            .expect("probe");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{output}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
}

/// Every function's TLS is rustls on ring, and aws-lc (the SDK's default, about 0.65 MB more per
/// zipped bootstrap) is linked into none of them: it would come back with an SDK crate's or
/// aws-config's `default-https-client` feature, or with adapters' `aws-lc` feature.
#[test]
fn every_function_links_ring_and_not_aws_lc() {
    let root = integration_tests::workspace_root();
    let mut functions: Vec<String> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    functions.sort();
    assert_eq!(functions.len(), 4, "{functions:?}");
    for function in &functions {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args(["tree", "-e", "normal", "--prefix", "none", "-p", function])
            .output()
            .expect("cargo tree");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let crates: Vec<&str> = std::str::from_utf8(&out.stdout)
            .expect("utf-8")
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        assert!(crates.contains(&"ring"), "{function}: {crates:?}");
        assert!(crates.contains(&"rustls"), "{function}");
        for aws_lc in ["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys"] {
            assert!(!crates.contains(&aws_lc), "{function} links {aws_lc}");
        }
    }
}
