//! Exact money: minor units (cents), parsed from a decimal string, never a float.

use serde::{Deserialize, Serialize};

/// Ten billion in major units: far above any real order, far below `i64` overflow.
pub const MAX_MINOR_UNITS: i64 = 1_000_000_000_000;

/// An amount of money in minor units (cents). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    /// Parses `59.90`, `"59.90"`, `59.9`, `59` (at most two decimals, no sign, no exponent).
    pub fn parse_decimal(text: &str) -> Result<Money, String> {
        const FORMAT: &str = "must be a non-negative amount with at most 2 decimals, like 59.90";
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 {
            return Err(FORMAT.into());
        }
        if whole.len() > 15 {
            return Err("is too large".into());
        }
        let whole: i64 = whole.parse().map_err(|_| FORMAT.to_string())?;
        let cents: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().map_err(|_| FORMAT.to_string())? * 10,
            _ => fraction.parse::<i64>().map_err(|_| FORMAT.to_string())?,
        };
        let minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .filter(|m| *m <= MAX_MINOR_UNITS)
            .ok_or_else(|| "is too large".to_string())?;
        Ok(Money(minor))
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}
