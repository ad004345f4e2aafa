//! The secrets accounts hand out (API tokens, session ids, generated passwords) and the one
//! way they are stored: SHA-256, never the secret itself.

use rand::Rng;
use sha2::{Digest, Sha256};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub const TOKEN_PREFIX: &str = "jd_";
const TOKEN_BODY: usize = 32;
const TOKEN_CHECK: usize = 6;
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + TOKEN_BODY + TOKEN_CHECK;

/// `len` characters of base62 from the operating system's CSPRNG (via `rand::rng`).
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// `jd_` + 32 random base62 characters + a 6-character checksum of what precedes it, so
/// a leaked token is recognisable by scanners and a mistyped one is refused without a
/// database query.
pub fn new_api_token() -> String {
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(TOKEN_PREFIX);
    token.push_str(&random_base62(TOKEN_BODY));
    let check = checksum(&token);
    token.push_str(&check);
    token
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    #[error("not a Jobdeck token (expected jd_ and 38 letters or digits)")]
    Shape,
    #[error("the token's checksum does not match: it was mistyped or cut short")]
    Checksum,
}

/// Checks a presented token's shape and checksum; only a token that passes is looked up.
pub fn check_api_token(token: &str) -> Result<(), MalformedToken> {
    let body = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(MalformedToken::Shape)?;
    if token.len() != TOKEN_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(MalformedToken::Shape);
    }
    let (head, check) = token.split_at(TOKEN_LEN - TOKEN_CHECK);
    if checksum(head) != check {
        return Err(MalformedToken::Checksum);
    }
    Ok(())
}

/// The first characters of a token, kept to tell tokens apart on a page.
pub fn display_prefix(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 4).collect()
}

/// CRC-32 (IEEE) of `text`, as 6 base62 digits.
fn checksum(text: &str) -> String {
    let mut crc: u32 = !0;
    for byte in text.bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut value = u64::from(!crc);
    let mut digits = [b'0'; TOKEN_CHECK];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_passes_its_own_check() {
        let token = new_api_token();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.starts_with("jd_"));
        assert_eq!(check_api_token(&token), Ok(()));
    }

    #[test]
    fn one_changed_character_fails_the_checksum() {
        let token = new_api_token();
        let mut bytes = token.into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert_eq!(check_api_token(&typo), Err(MalformedToken::Checksum));
    }

    #[test]
    fn wrong_shapes_are_refused() {
        for bad in [
            "",
            "jd_",
            "xx_abc",
            &format!("jd_{}", "a".repeat(37)),
            &format!("jd_{}!", "a".repeat(37)),
        ] {
            assert_eq!(check_api_token(bad), Err(MalformedToken::Shape), "{bad}");
        }
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        // The standard check value of CRC-32/IEEE.
        let mut value: u64 = 0xCBF4_3926;
        let mut expected = Vec::new();
        for _ in 0..TOKEN_CHECK {
            expected.push(BASE62[(value % 62) as usize]);
            value /= 62;
        }
        expected.reverse();
        assert_eq!(checksum("123456789").as_bytes(), expected.as_slice());
    }
}
