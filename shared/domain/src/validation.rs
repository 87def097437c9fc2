//! Field-level validation errors, shared by every input the suite parses.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The JSON field (or query parameter) at fault; empty for the document as a whole.
    pub field: String,
    pub message: String,
}

/// The most client-chosen names one error document echoes.
pub const MAX_ECHOED_NAMES: usize = 5;
/// The most characters of one client-chosen name an error echoes.
pub const MAX_ECHOED_NAME_CHARS: usize = 40;

/// A client-chosen name as an error may quote it: at most `MAX_ECHOED_NAME_CHARS` characters
/// (then `…`), control characters replaced by `?`.
pub fn echoed(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(MAX_ECHOED_NAME_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > MAX_ECHOED_NAME_CHARS {
        out.push('…');
    }
    out
}

/// One or more problems with an input, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Records names the input should not have had (unknown fields, unknown query parameters),
    /// echoing a bounded amount of them: at most `MAX_ECHOED_NAMES`, each cut to
    /// `MAX_ECHOED_NAME_CHARS` characters; the rest are counted in one document-level error.
    pub fn add_unknown<'a>(&mut self, names: impl IntoIterator<Item = &'a str>, message: &str) {
        let mut more = 0usize;
        for (i, name) in names.into_iter().enumerate() {
            if i < MAX_ECHOED_NAMES {
                self.add(&echoed(name), message);
            } else {
                more += 1;
            }
        }
        if more > 0 {
            self.add("", format!("{more} more name(s) not listed: {message}"));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else the collected errors.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| {
                if e.field.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.field, e.message)
                }
            })
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_cut_and_counted() {
        let long = "n".repeat(10_000);
        let names: Vec<String> = (0..1000).map(|i| format!("{long}{i}")).collect();
        let mut errors = ValidationErrors::new();
        errors.add_unknown(names.iter().map(String::as_str), "is not known");
        assert_eq!(errors.errors.len(), MAX_ECHOED_NAMES + 1);
        assert!(errors.errors[..MAX_ECHOED_NAMES]
            .iter()
            .all(|e| e.field.chars().count() == MAX_ECHOED_NAME_CHARS + 1));
        assert_eq!(
            errors.errors[MAX_ECHOED_NAMES].message,
            "995 more name(s) not listed: is not known"
        );
        assert!(errors.to_string().len() < 1024);
        let mut few = ValidationErrors::new();
        few.add_unknown(["a\nb"], "is not known");
        assert_eq!(few.errors[0].field, "a?b");
        assert_eq!(few.errors.len(), 1);
    }
}
