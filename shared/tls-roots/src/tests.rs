use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// A fresh directory under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = env::temp_dir().join(format!(
        "tls-roots-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| {
            let body = STANDARD.encode(c.as_ref());
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|l| std::str::from_utf8(l).expect("ascii"))
                .collect();
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            )
        })
        .collect()
}

fn holds(cert: &CertificateDer<'_>, text: &str) -> bool {
    cert.as_ref()
        .windows(text.len())
        .any(|w| w == text.as_bytes())
}

#[test]
fn without_either_variable_the_roots_are_the_compiled_in_ones_and_nothing_is_read() {
    assert_eq!(Sources::from_values(None, None), Sources::CompiledIn);
    let loaded = Sources::CompiledIn.load();
    assert!(loaded.errors.is_empty());
    assert_eq!(
        loaded.certs.len(),
        webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
    );
    assert!(loaded
        .certs
        .iter()
        .eq(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter()));
}

#[test]
fn the_compiled_in_roots_hold_amazon_trust_services_and_all_parse_as_trust_anchors() {
    let roots = compiled_in_roots();
    assert!(roots.len() > 100, "{} roots", roots.len());
    // AWS service endpoints chain to Amazon Trust Services' roots (Starfield Services G2 cross-signs them).
    for name in [
        "Amazon Root CA 1",
        "Amazon Root CA 2",
        "Amazon Root CA 3",
        "Amazon Root CA 4",
    ] {
        assert!(roots.iter().any(|c| holds(c, name)), "{name} missing");
    }
    let mut store = rustls::RootCertStore::empty();
    let (valid, invalid) = store.add_parsable_certificates(roots.clone());
    assert_eq!((valid, invalid), (roots.len(), 0));
}

#[test]
fn ssl_cert_file_replaces_the_compiled_in_roots_with_its_certificates() {
    let dir = scratch("file");
    let chosen = &compiled_in_roots()[..2];
    let file = dir.join("private-ca.pem");
    fs::write(&file, format!("a comment line\n{}", pem(chosen))).expect("write");

    let sources = Sources::from_values(Some(file.clone().into()), None);
    let loaded = sources.load();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut expected = chosen.to_vec();
    expected.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    assert_eq!(loaded.certs, expected);
    assert_eq!(load_certs_from_paths(Some(&file), None).certs, expected);
}

#[test]
fn ssl_cert_dir_reads_each_file_once_across_links_and_entries() {
    let dir = scratch("dir");
    let roots = compiled_in_roots();
    fs::write(dir.join("one.pem"), pem(&roots[..1])).expect("write");
    fs::write(dir.join("two.pem"), pem(&roots[1..3])).expect("write");
    fs::write(dir.join("README"), "no certificates here\n").expect("write");
    std::os::unix::fs::symlink(dir.join("one.pem"), dir.join("5ad8a5d6.0")).expect("link");
    std::os::unix::fs::symlink(dir.join("gone.pem"), dir.join("dangling.0")).expect("link");
    let other = scratch("dir2");
    fs::write(other.join("three.pem"), pem(&roots[3..4])).expect("write");

    let joined = env::join_paths([dir.as_path(), Path::new(""), other.as_path()]).expect("join");
    let loaded = Sources::from_values(None, Some(joined)).load();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut expected = roots[..4].to_vec();
    expected.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    assert_eq!(loaded.certs, expected);
}

#[test]
fn a_missing_file_is_an_error_naming_it_and_never_falls_back_to_the_compiled_in_roots() {
    let missing = scratch("missing").join("nope.pem");
    let loaded = Sources::from_values(Some(missing.clone().into()), None).load();
    assert!(loaded.certs.is_empty());
    assert_eq!(loaded.errors.len(), 1);
    let message = loaded.errors[0].to_string();
    assert!(message.contains("nope.pem"), "{message}");
    assert!(matches!(loaded.errors[0].kind, ErrorKind::Io { .. }));

    let loaded = Sources::from_values(None, Some(missing.into())).load();
    assert!(loaded.certs.is_empty());
    assert!(loaded.errors[0]
        .to_string()
        .starts_with("opening directory"));
}

#[test]
fn an_empty_variable_still_replaces_the_compiled_in_roots() {
    // As upstream: SSL_CERT_FILE=/dev/null or an empty SSL_CERT_DIR means "trust these: none".
    assert_eq!(
        Sources::from_values(None, Some(OsString::new())),
        Sources::Paths {
            file: None,
            dirs: vec![]
        }
    );
    let loaded = Sources::from_values(Some("/dev/null".into()), None).load();
    assert!(loaded.certs.is_empty() && loaded.errors.is_empty());
}

#[test]
fn the_workspace_resolves_rustls_native_certs_to_this_crate_for_the_sdk() {
    let lock = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
        .expect("Cargo.lock");
    let entries: Vec<&str> = lock
        .split("[[package]]")
        .filter(|p| p.contains("\nname = \"rustls-native-certs\"\n"))
        .collect();
    assert_eq!(entries.len(), 1, "one rustls-native-certs in the graph");
    assert!(
        !entries[0].contains("source ="),
        "crates.io's rustls-native-certs is linked: {}",
        entries[0]
    );
    let client = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"aws-smithy-http-client\"\n"))
        .expect("aws-smithy-http-client");
    assert!(client.contains("\"rustls-native-certs\""));
}
