//! The TLS root certificates of every AWS SDK client in the suite.
//!
//! The SDK's HTTPS client (aws-smithy-http-client, rustls) asks `rustls-native-certs` for the
//! platform's roots once per process, when it first builds a TLS connector. That crate reads the
//! system bundle (about 200 KB of PEM on provided.al2023) and decodes every certificate from base64:
//! most of what a function's cold start spent beyond a hello-world `lambda_runtime` function
//! (BENCHMARKS.md, "Cold start against a hello-world"). The SDK's TLS settings take extra roots
//! only as PEM, so the workspace replaces that crate with this one (`[patch.crates-io]` in the
//! workspace's Cargo.toml): same name, same API, and these roots:
//!
//! - **By default, Mozilla's root program compiled in** (`webpki-root-certs`, already DER: nothing
//!   to read or decode at a cold start). Amazon Linux's `ca-certificates`, what a Lambda function
//!   would otherwise read, is built from the same list; AWS endpoints chain to Amazon Trust
//!   Services roots, which are in it. The list is as fresh as the build: `cargo update -p
//!   webpki-root-certs` takes a newer one.
//! - **When `SSL_CERT_FILE` or `SSL_CERT_DIR` is set, the PEM certificates they name instead**, as
//!   upstream reads them (a file, and directories separated by `:`, each file read once): a private
//!   CA, or a TLS-inspecting proxy, is one environment variable on the function away.
//!
//! Errors are reported as upstream reports them: in [`CertificateResult::errors`], beside whatever
//! certificates did load.

use std::collections::HashSet;
use std::error::Error as StdError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::{env, fmt, fs, io};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::CertificateDer;

/// The variable naming a PEM file of root certificates.
pub const CERT_FILE_VARIABLE: &str = "SSL_CERT_FILE";
/// The variable naming directories of PEM files (`:`-separated).
pub const CERT_DIR_VARIABLE: &str = "SSL_CERT_DIR";

/// The roots to trust: those `SSL_CERT_FILE` / `SSL_CERT_DIR` name when either is set, else the
/// compiled-in Mozilla roots. Called once per process by the SDK (it keeps the result).
pub fn load_native_certs() -> CertificateResult {
    Sources::from_values(
        env::var_os(CERT_FILE_VARIABLE),
        env::var_os(CERT_DIR_VARIABLE),
    )
    .load()
}

/// The roots compiled into the binary: Mozilla's root program, from `webpki-root-certs`.
pub fn compiled_in_roots() -> Vec<CertificateDer<'static>> {
    // Borrowed from the binary's read-only data: no copy of the bytes.
    webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec()
}

/// The PEM certificates of `file` and of the files in `dir` (not recursive); both `None` gives none.
pub fn load_certs_from_paths(file: Option<&Path>, dir: Option<&Path>) -> CertificateResult {
    if file.is_none() && dir.is_none() {
        return CertificateResult::default();
    }
    Sources::Paths {
        file: file.map(Path::to_path_buf),
        dirs: dir.map(Path::to_path_buf).into_iter().collect(),
    }
    .load()
}

/// Where the roots come from.
#[derive(Debug, PartialEq)]
enum Sources {
    CompiledIn,
    Paths {
        file: Option<PathBuf>,
        dirs: Vec<PathBuf>,
    },
}

impl Sources {
    /// From the values of `SSL_CERT_FILE` and `SSL_CERT_DIR` (unset: `None`). An empty
    /// `SSL_CERT_DIR` entry is skipped; set at all, either variable replaces the compiled-in roots.
    fn from_values(file: Option<OsString>, dirs: Option<OsString>) -> Sources {
        if file.is_none() && dirs.is_none() {
            return Sources::CompiledIn;
        }
        Sources::Paths {
            file: file.map(PathBuf::from),
            dirs: dirs
                .map(|d| {
                    env::split_paths(&d)
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn load(&self) -> CertificateResult {
        match self {
            Sources::CompiledIn => CertificateResult {
                certs: compiled_in_roots(),
                errors: Vec::new(),
            },
            Sources::Paths { file, dirs } => {
                let mut out = CertificateResult::default();
                let mut read = ReadOnce::default();
                if let Some(file) = file {
                    if let Ok(meta) = fs::metadata(file) {
                        read.first_time(&meta);
                    }
                    out.read_pem_file(file);
                }
                for dir in dirs {
                    out.read_pem_dir(dir, &mut read);
                }
                out.certs
                    .sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
                out.certs.dedup();
                out
            }
        }
    }
}

/// The files already read, by device and inode: a certificate directory holds hash-named links to
/// each certificate, and often the bundle too.
#[derive(Default)]
struct ReadOnce(HashSet<(u64, u64)>);

impl ReadOnce {
    fn first_time(&mut self, meta: &fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.0.insert((meta.dev(), meta.ino()))
    }
}

/// What loading the roots gave: the certificates, and every error met on the way.
#[non_exhaustive]
#[derive(Debug, Default)]
pub struct CertificateResult {
    /// The certificates loaded.
    pub certs: Vec<CertificateDer<'static>>,
    /// The errors met (a certificate that failed does not stop the others).
    pub errors: Vec<Error>,
}

impl CertificateResult {
    /// The certificates when nothing failed; panics with `msg` and the errors otherwise.
    #[track_caller]
    pub fn expect(self, msg: &str) -> Vec<CertificateDer<'static>> {
        if !self.errors.is_empty() {
            panic!("{msg}: {:?}", self.errors);
        }
        self.certs
    }

    /// The certificates when nothing failed; panics with the errors otherwise.
    #[track_caller]
    pub fn unwrap(self) -> Vec<CertificateDer<'static>> {
        self.expect("errors occurred while loading certificates")
    }

    fn read_pem_file(&mut self, path: &Path) {
        match CertificateDer::pem_file_iter(path) {
            Ok(certs) => {
                for cert in certs {
                    match cert {
                        Ok(cert) => self.certs.push(cert),
                        Err(e) => self.pem_error(e, path),
                    }
                }
            }
            Err(e) => self.pem_error(e, path),
        }
    }

    fn read_pem_dir(&mut self, dir: &Path, read: &mut ReadOnce) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.io_error(e, dir, "opening directory"),
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(e) => {
                    self.io_error(e, dir, "reading directory entries");
                    continue;
                }
            };
            // Follows links (`openssl rehash` makes the hash names links); a dangling one is skipped.
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() && read.first_time(&meta) => self.read_pem_file(&path),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self.io_error(e, &path, "failed to open file"),
            }
        }
    }

    fn pem_error(&mut self, error: pem::Error, path: &Path) {
        let kind = match error {
            pem::Error::Io(inner) => ErrorKind::Io {
                inner,
                path: path.to_path_buf(),
            },
            other => ErrorKind::Pem(other),
        };
        self.errors.push(Error {
            context: "failed to read PEM from file",
            kind,
        });
    }

    fn io_error(&mut self, inner: io::Error, path: &Path, context: &'static str) {
        self.errors.push(Error {
            context,
            kind: ErrorKind::Io {
                inner,
                path: path.to_path_buf(),
            },
        });
    }
}

/// A failure while loading roots from files: what was being done, and what went wrong.
#[derive(Debug)]
pub struct Error {
    /// What was being done.
    pub context: &'static str,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong.
#[non_exhaustive]
#[derive(Debug)]
pub enum ErrorKind {
    /// Reading a file or directory failed.
    Io { inner: io::Error, path: PathBuf },
    /// The platform's store failed (never produced here: kept for upstream's API).
    Os(Box<dyn StdError + Send + Sync + 'static>),
    /// A file's PEM was malformed.
    Pem(pem::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.context)?;
        match &self.kind {
            ErrorKind::Io { inner, path } => write!(f, "{inner} at '{}'", path.display()),
            ErrorKind::Os(e) => write!(f, "{e}"),
            ErrorKind::Pem(e) => write!(f, "{e}"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            ErrorKind::Io { inner, .. } => Some(inner),
            ErrorKind::Os(e) => Some(e.as_ref()),
            ErrorKind::Pem(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests;
