//! Tokens and enrollment codes: generated from the OS's randomness, shown
//! once, stored only as hashes, and never printed by `Debug`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A secret shown to a person once (a token or code). `Debug` hides it, so
/// it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, to hand to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS's CSPRNG; without it no secret can be made safely at all.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator is unavailable");
    bytes
}

/// A device or API token: `mpk_` and 256 random bits in base64url.
pub fn new_token() -> Secret {
    Secret(format!("mpk_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>())))
}

/// Letters and digits that survive being read aloud or typed on a phone
/// (no 0/O, 1/I/L, 5/S, 2/Z).
const CODE_ALPHABET: &[u8] = b"34679ABCDEFGHJKMNPQRTUVWXY";

/// An enrollment code: 12 symbols (about 56 bits) in groups of four, e.g.
/// `K7QM-4XHD-9PAT`. Short-lived and single-use; guessing is rate-limited.
pub fn new_enrollment_code() -> Secret {
    let bytes = random_bytes::<12>();
    let symbols: Vec<char> = bytes
        .iter()
        .map(|b| CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char)
        .collect();
    let groups: Vec<String> = symbols.chunks(4).map(|c| c.iter().collect()).collect();
    Secret(groups.join("-"))
}

/// A code as typed: upper case, without spaces or dashes.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
