//! The one redaction layer between outside text and every sink. A provider's error body may
//! echo the key it was sent (OpenAI's "Incorrect API key provided: sk-..." does), a local
//! command may print its environment, a parameter may be a key: whatever the process
//! holds as a secret is replaced by `[REDACTED]` before anything is stored (journal, cache,
//! results, judgements, `run.json`, summaries) or printed.
//!
//! The secrets are the values of the environment variables whose names say they are secret
//! (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, ...), of the variables a spec names as
//! `api_key_env`, and of `--param` values whose names look secret; each is also matched in
//! its JSON-escaped form, so a secret inside a stored JSON string is found too.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Shorter values are not treated as secrets: replacing every `1` or `true` in the output
/// would destroy it, and a real key is never that short.
const MIN_SECRET_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Whether a variable or parameter name says its value is secret: one of its words
/// (split at anything but letters and digits) is `KEY`, `TOKEN`, `SECRET`, `PASSWORD`, ...
/// (`max_tokens` is not: its word is `TOKENS`).
pub fn name_looks_secret(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "KEY",
        "APIKEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "CREDENTIALS",
        "AUTH",
        "AUTHORIZATION",
    ];
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| WORDS.contains(&word.to_ascii_uppercase().as_str()))
}

/// Adds a secret (and its JSON-escaped form) to those redacted from now on.
pub fn register(secret: &str) {
    if secret.trim().len() < MIN_SECRET_LEN {
        return;
    }
    let escaped = serde_json::to_string(secret).unwrap_or_default();
    let escaped = escaped
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(secret)
        .to_string();
    let Ok(mut secrets) = SECRETS.write() else {
        return;
    };
    for form in [secret.to_string(), escaped] {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers the value of environment variable `name`, if set.
pub fn register_env(name: &str) {
    if let Ok(value) = std::env::var(name) {
        register(&value);
    }
}

/// Registers every environment variable whose name looks secret.
pub fn register_environment() {
    for (name, value) in std::env::vars_os() {
        if let (Some(name), Some(value)) = (name.to_str(), value.to_str())
            && name_looks_secret(name)
        {
            register(value);
        }
    }
}

/// `text` with every registered secret replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_replaced_in_plain_and_json_text() {
        register("sk-test-\"quoted\"-secret");
        let plain = redact("Incorrect API key provided: sk-test-\"quoted\"-secret.");
        assert_eq!(plain, "Incorrect API key provided: [REDACTED].");
        let json = serde_json::to_string("key sk-test-\"quoted\"-secret").unwrap();
        assert_eq!(redact(&json), "\"key [REDACTED]\"");
        // Short values are never secrets, and other text is left alone.
        register("abc");
        assert_eq!(redact("abc def"), "abc def");
    }

    #[test]
    fn secret_names() {
        for name in [
            "OPENAI_API_KEY",
            "api_key",
            "HF_TOKEN",
            "db_password",
            "x-auth",
        ] {
            assert!(name_looks_secret(name), "{name}");
        }
        for name in ["temperature", "max_tokens", "PATH", "HOME", "KEYBOARD"] {
            assert!(!name_looks_secret(name), "{name}");
        }
    }
}
