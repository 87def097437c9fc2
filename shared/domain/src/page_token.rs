//! Opaque, tamper-checked pagination tokens: `base64url(cursor) "." base64url(hmac-sha256(cursor))`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("next_token is not a token this API issued")]
pub struct InvalidToken;

/// Signs and verifies cursors with one secret key.
#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, cursor: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(cursor);
        mac
    }

    pub fn sign(&self, cursor: &str) -> String {
        let tag = self.mac(cursor.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(cursor),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    pub fn verify(&self, token: &str) -> Result<String, InvalidToken> {
        if token.len() > 1024 {
            return Err(InvalidToken);
        }
        let (body, tag) = token.split_once('.').ok_or(InvalidToken)?;
        let cursor = URL_SAFE_NO_PAD.decode(body).map_err(|_| InvalidToken)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidToken)?;
        self.mac(&cursor)
            .verify_slice(&tag)
            .map_err(|_| InvalidToken)?;
        String::from_utf8(cursor).map_err(|_| InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_tampering() {
        let tokens = PageTokens::new("secret");
        let t = tokens.sign("3f2a-cursor");
        assert_eq!(tokens.verify(&t).unwrap(), "3f2a-cursor");
        let (body, tag) = t.split_once('.').unwrap();
        let forged = format!("{}.{}", URL_SAFE_NO_PAD.encode("other"), tag);
        assert_eq!(tokens.verify(&forged), Err(InvalidToken));
        assert_eq!(tokens.verify(body), Err(InvalidToken));
        assert_eq!(tokens.verify("!!.??"), Err(InvalidToken));
        assert_eq!(PageTokens::new("other key").verify(&t), Err(InvalidToken));
    }
}
