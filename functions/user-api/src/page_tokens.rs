//! The page-token signer of a warm process, its key read from where it is kept on the first request
//! that pages rather than at cold start.

use std::future::Future;
use std::pin::Pin;

use domain::page_token::PageTokens;
use domain::PortError;
use tokio::sync::OnceCell;

/// Reads the signing key where it is kept (a secret store): the source of a [`LazyPageTokens`].
pub type ReadKey =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, PortError>> + Send>> + Send + Sync>;

/// The page-token signer with its key read on the first request that signs or verifies a token, not
/// at cold start: most requests never page, and reading a secret is a network round trip. A failed
/// read is not remembered: the next request that needs the key reads again.
pub struct LazyPageTokens {
    tokens: OnceCell<PageTokens>,
    read: Option<ReadKey>,
}

impl std::fmt::Debug for LazyPageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyPageTokens")
            .field("read", &self.is_read())
            .finish()
    }
}

impl LazyPageTokens {
    /// A key already at hand (local runs and tests).
    pub fn ready(key: impl Into<Vec<u8>>) -> Self {
        Self {
            tokens: OnceCell::new_with(Some(PageTokens::new(key))),
            read: None,
        }
    }

    /// A key `read` returns, asked for when a token is first signed or verified.
    pub fn read_on_first_use<F, Fut>(read: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, PortError>> + Send + 'static,
    {
        Self {
            tokens: OnceCell::new(),
            read: Some(Box::new(move || Box::pin(read()))),
        }
    }

    /// Whether the key has been read.
    pub fn is_read(&self) -> bool {
        self.tokens.initialized()
    }

    /// The signer, reading the key if no request has yet.
    pub async fn get(&self) -> Result<&PageTokens, PortError> {
        self.tokens
            .get_or_try_init(|| async {
                match &self.read {
                    Some(read) => read().await.map(PageTokens::new),
                    None => Err(PortError::Rejected("no page-token key".into())),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn the_key_is_read_on_first_use_once_and_a_failed_read_is_tried_again() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let lazy = LazyPageTokens::read_on_first_use(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(PortError::Unavailable("secretsmanager: timed out".into()))
                } else {
                    Ok("the key".to_string())
                }
            }
        });
        assert!(!lazy.is_read());
        assert_eq!(
            reads.load(Ordering::SeqCst),
            0,
            "nothing read before a token is needed"
        );
        assert!(matches!(lazy.get().await, Err(PortError::Unavailable(_))));
        assert!(!lazy.is_read(), "a failed read is not kept");
        let token = lazy.get().await.unwrap().sign("cursor");
        assert_eq!(PageTokens::new("the key").verify(&token).unwrap(), "cursor");
        lazy.get().await.unwrap();
        assert_eq!(
            reads.load(Ordering::SeqCst),
            2,
            "read again after the failure, then kept"
        );
        assert!(lazy.is_read());
    }

    #[tokio::test]
    async fn a_ready_key_needs_no_read() {
        let lazy = LazyPageTokens::ready("k");
        assert!(lazy.is_read());
        let token = lazy.get().await.unwrap().sign("c");
        assert_eq!(PageTokens::new("k").verify(&token).unwrap(), "c");
    }
}
