//! Staff two-factor sign-in: time-based one-time passwords (RFC 6238 TOTP over RFC 4226 HOTP)
//! that any authenticator app understands, and single-use recovery codes.
//!
//! - [`new_secret`]: a new shared secret (20 random bytes, RFC 4648 base32, upper case, no
//!   padding); show it once through [`otpauth_uri`] (as a QR code) and keep it server side.
//! - [`code_at`]: the 6-digit code for a moment (HMAC-SHA1, 30-second steps).
//! - [`verify`]: checks a typed code against the current step and one step either side (clock
//!   drift) in constant time and returns the matched step. The caller stores that step and passes
//!   it back as `last_used_step` next time: a step at or before it is refused, so an observed code
//!   can't be replayed.
//! - [`new_recovery_codes`] / [`recovery_hash`]: codes such as `7k3m-9x2q-4f8t` shown once; only
//!   their hashes are stored and the caller deletes a hash when its code is used.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Seconds per step (the authenticator default; apps ignore other values more often than not).
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Steps accepted either side of the current one.
pub const DRIFT_STEPS: u64 = 1;
/// Random bytes in a new secret (160 bits, the HMAC-SHA1 output size RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

/// RFC 4648 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Recovery-code alphabet: lower case letters and digits without look-alikes (0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// Recovery codes are `GROUPS` groups of `GROUP_LEN` characters joined by `-` (≈59 bits).
const RECOVERY_GROUPS: usize = 3;
const RECOVERY_GROUP_LEN: usize = 4;

/// Why a code could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpError {
    /// The secret is empty (after removing spaces and padding).
    EmptySecret,
    /// The secret is not RFC 4648 base32.
    InvalidSecret,
}

impl fmt::Display for TotpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TotpError::EmptySecret => f.write_str("the TOTP secret is empty"),
            TotpError::InvalidSecret => f.write_str("the TOTP secret is not valid base32"),
        }
    }
}

impl std::error::Error for TotpError {}

/// A new shared secret: 20 random bytes as base32 (upper case, no padding, 32 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    base32_encode(&bytes)
}

/// The step a moment falls in.
pub fn step_at(unix_time: u64) -> u64 {
    unix_time / STEP_SECONDS
}

/// The 6-digit code (zero-padded) for the step `unix_time` falls in.
pub fn code_at(secret_b32: &str, unix_time: u64) -> Result<String, TotpError> {
    let key = base32_decode(secret_b32)?;
    Ok(hotp(&key, step_at(unix_time)))
}

/// Checks a typed `code` (spaces ignored) against the current step and [`DRIFT_STEPS`] either
/// side, in constant time. Returns the matched step, which the caller must store and pass back as
/// `last_used_step`: steps at or before it are refused (replay protection). `None` for a wrong,
/// malformed or replayed code, or an unusable secret.
pub fn verify(
    secret_b32: &str,
    code: &str,
    unix_time: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = base32_decode(secret_b32).ok()?;
    let now = step_at(unix_time);
    let first = now.saturating_sub(DRIFT_STEPS);
    let last = now.saturating_add(DRIFT_STEPS);
    // Every step in the window is computed and compared (no early exit); the highest match wins
    // so a code valid in two steps (a collision) can't be replayed in the later one.
    let mut matched = None;
    for step in first..=last {
        let fresh = last_used_step.is_none_or(|used| step > used);
        let equal = constant_time_eq(hotp(&key, step).as_bytes(), typed.as_bytes());
        if fresh && equal {
            matched = Some(step);
        }
    }
    matched
}

/// `uri` as a QR code: inline SVG (black modules on white, a quiet zone, scaled by CSS), or empty
/// if it can't be encoded (then the page still shows the key and the link).
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(220, 220)
                .quiet_zone(true)
                .build();
            // Inline in the page: without the XML declaration.
            match svg.find("<svg") {
                Some(at) => svg[at..].to_owned(),
                None => String::new(),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "TOTP set-up QR code not drawn");
            String::new()
        }
    }
}

/// The `otpauth://` URI authenticator apps read (usually from a QR code):
/// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`, the
/// issuer and account percent-encoded. An empty issuer leaves out both the label prefix and the
/// `issuer` parameter.
pub fn otpauth_uri(secret_b32: &str, account: &str, issuer: &str) -> String {
    let secret: String = secret_b32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let account = percent_encode(account);
    if issuer.is_empty() {
        format!(
            "otpauth://totp/{account}?secret={secret}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
        )
    } else {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
        )
    }
}

/// `n` new recovery codes such as `7k3m-9x2q-4f8t` (lower case, no look-alike characters). Show
/// them once; store only [`recovery_hash`] of each.
pub fn new_recovery_codes(n: usize) -> Vec<String> {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            let mut code = String::with_capacity(RECOVERY_GROUPS * (RECOVERY_GROUP_LEN + 1));
            for group in 0..RECOVERY_GROUPS {
                if group > 0 {
                    code.push('-');
                }
                for _ in 0..RECOVERY_GROUP_LEN {
                    let i = rng.random_range(0..RECOVERY_ALPHABET.len());
                    code.push(char::from(RECOVERY_ALPHABET[i]));
                }
            }
            code
        })
        .collect()
}

/// SHA-256 (64 lower-case hex digits) of a recovery code after normalizing it (lower case, spaces
/// and dashes removed), so `7K3M 9X2Q 4F8T` and `7k3m-9x2q-4f8t` hash alike.
pub fn recovery_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// RFC 4226 HOTP: HMAC-SHA1 of the big-endian counter, dynamic truncation, [`DIGITS`] digits.
fn hotp(key: &[u8], counter: u64) -> String {
    // HMAC takes keys of any length, so this never fails; an empty code never matches anything.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let hash: [u8; 20] = mac.finalize().into_bytes().into();
    let offset = usize::from(hash[19] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    let modulus = 10u32.pow(DIGITS as u32);
    format!("{:0width$}", binary % modulus, width = DIGITS)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (UTF-8 bytes; space is `%20`,
/// `:` is encoded so it can't be mistaken for the issuer separator in the label).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 4648 base32, upper case, without padding.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[usize::from((buffer >> bits) & 0x1f)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            BASE32[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

/// RFC 4648 base32, forgiving what people type or apps show: either case, spaces, dashes and
/// trailing `=` padding. Refuses other characters and lengths no byte string encodes to.
fn base32_decode(text: &str) -> Result<Vec<u8>, TotpError> {
    let cleaned: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'-')
        .collect();
    let unpadded = match cleaned.iter().position(|&b| b == b'=') {
        Some(at) if cleaned[at..].iter().all(|&b| b == b'=') => &cleaned[..at],
        Some(_) => return Err(TotpError::InvalidSecret),
        None => &cleaned[..],
    };
    if unpadded.is_empty() {
        return Err(TotpError::EmptySecret);
    }
    // 8 characters carry 5 bytes; a final group of 1, 3 or 6 characters is impossible.
    if matches!(unpadded.len() % 8, 1 | 3 | 6) {
        return Err(TotpError::InvalidSecret);
    }
    let mut out = Vec::with_capacity(unpadded.len() * 5 / 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &c in unpadded {
        let value = match c.to_ascii_uppercase() {
            upper @ b'A'..=b'Z' => upper - b'A',
            digit @ b'2'..=b'7' => digit - b'2' + 26,
            _ => return Err(TotpError::InvalidSecret),
        };
        buffer = (buffer << 5) | u16::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
    fn rfc_secret() -> String {
        base32_encode(b"12345678901234567890")
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = rfc_secret();
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        // The last six digits of the RFC's eight-digit codes.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, eight) in vectors {
            assert_eq!(code_at(&secret, t).unwrap(), &eight[2..], "T = {t}");
            assert_eq!(
                verify(&secret, &eight[2..], t, None),
                Some(t / 30),
                "T = {t}"
            );
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64), *code);
        }
    }

    #[test]
    fn base32_rfc4648_vectors_round_trip() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain), encoded);
            if !plain.is_empty() {
                assert_eq!(base32_decode(encoded).unwrap(), plain);
            }
        }
        // Padding, lower case, spaces and dashes as apps and people write them.
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw 6ytb-oi").unwrap(), b"foobar");
        assert_eq!(base32_decode("MY======").unwrap(), b"f");
        // Not base32, impossible lengths, padding in the middle, nothing at all.
        assert_eq!(base32_decode("MZXW1YTB"), Err(TotpError::InvalidSecret));
        assert_eq!(base32_decode("MZX"), Err(TotpError::InvalidSecret));
        assert_eq!(base32_decode("M"), Err(TotpError::InvalidSecret));
        assert_eq!(base32_decode("MY=A"), Err(TotpError::InvalidSecret));
        assert_eq!(base32_decode(""), Err(TotpError::EmptySecret));
        assert_eq!(base32_decode(" == "), Err(TotpError::EmptySecret));
        assert_eq!(code_at("not base32!", 0), Err(TotpError::InvalidSecret));
        assert_eq!(verify("not base32!", "123456", 0, None), None);
    }

    #[test]
    fn new_secrets_are_random_base32_of_20_bytes() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| BASE32.contains(&c)));
        assert_eq!(base32_decode(&a).unwrap().len(), SECRET_BYTES);
        assert_eq!(code_at(&a, 1_700_000_000).unwrap().len(), DIGITS);
    }

    #[test]
    fn one_step_of_drift_either_side_is_accepted_two_are_not() {
        let secret = rfc_secret();
        let now = 1_700_000_015; // mid-step
        let step = now / 30;
        let code_for = |offset: i64| code_at(&secret, (now as i64 + offset * 30) as u64).unwrap();
        assert_eq!(verify(&secret, &code_for(0), now, None), Some(step));
        assert_eq!(verify(&secret, &code_for(-1), now, None), Some(step - 1));
        assert_eq!(verify(&secret, &code_for(1), now, None), Some(step + 1));
        assert_eq!(verify(&secret, &code_for(-2), now, None), None);
        assert_eq!(verify(&secret, &code_for(2), now, None), None);
        // Near the epoch the window is clipped, not wrapped.
        assert_eq!(
            verify(&secret, &code_at(&secret, 0).unwrap(), 10, None),
            Some(0)
        );
    }

    #[test]
    fn a_used_step_is_not_accepted_again() {
        let secret = rfc_secret();
        let now = 1_700_000_015;
        let code = code_at(&secret, now).unwrap();
        let used = verify(&secret, &code, now, None).unwrap();
        assert_eq!(verify(&secret, &code, now, Some(used)), None);
        assert_eq!(verify(&secret, &code, now + 20, Some(used)), None);
        // An older code is refused once a later step was used ...
        let previous = code_at(&secret, now - 30).unwrap();
        assert_eq!(verify(&secret, &previous, now, Some(used)), None);
        // ... and the next step's code still works.
        let next = code_at(&secret, now + 30).unwrap();
        assert_eq!(verify(&secret, &next, now + 30, Some(used)), Some(used + 1));
    }

    #[test]
    fn spaces_are_ignored_and_malformed_codes_refused() {
        let secret = rfc_secret();
        let t = 59;
        assert_eq!(verify(&secret, "287 082", t, None), Some(1));
        assert_eq!(verify(&secret, " 287082\t", t, None), Some(1));
        assert_eq!(verify(&secret, "2 8 7 0 8 2", t, None), Some(1));
        assert_eq!(verify(&secret, "28708", t, None), None);
        assert_eq!(verify(&secret, "2870820", t, None), None);
        assert_eq!(verify(&secret, "94287082", t, None), None);
        assert_eq!(verify(&secret, "", t, None), None);
        assert_eq!(verify(&secret, "28708a", t, None), None);
        assert_eq!(verify(&secret, "287-082", t, None), None);
        assert_eq!(verify(&secret, "２８７０８２", t, None), None);
        assert_eq!(verify(&secret, "000000", t, None), None);
    }

    #[test]
    fn the_qr_code_is_an_inline_svg() {
        let svg = qr_svg(&otpauth_uri(
            "JBSWY3DPEHPK3PXP",
            "tech@juicejunkiez.com",
            "Juice Junkiez",
        ));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("<path") || svg.contains("<rect"));
        assert!(!svg.contains("<?xml") && !svg.contains("script"));
    }

    #[test]
    fn otpauth_uri_is_what_authenticators_read() {
        assert_eq!(
            otpauth_uri("JBSWY3DPEHPK3PXP", "tech@juicejunkiez.com", "Juice Junkiez"),
            "otpauth://totp/Juice%20Junkiez:tech%40juicejunkiez.com?secret=JBSWY3DPEHPK3PXP\
             &issuer=Juice%20Junkiez&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri("jbsw y3dp ehpk 3pxp", "a:b&c=d?/é", "Omneuro"),
            "otpauth://totp/Omneuro:a%3Ab%26c%3Dd%3F%2F%C3%A9?secret=JBSWY3DPEHPK3PXP\
             &issuer=Omneuro&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri("JBSWY3DPEHPK3PXP", "tech", ""),
            "otpauth://totp/tech?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_unambiguous_and_distinct() {
        let codes = new_recovery_codes(10);
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 14, "{code}");
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 3, "{code}");
            for group in groups {
                assert_eq!(group.len(), 4, "{code}");
                assert!(
                    group.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)),
                    "{code}"
                );
            }
            assert!(!code.contains(['0', 'o', '1', 'l', 'i']), "{code}");
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert!(new_recovery_codes(0).is_empty());
    }

    #[test]
    fn recovery_hashes_normalize_case_spaces_and_dashes() {
        let hash = recovery_hash("7k3m-9x2q-4f8t");
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(hash, recovery_hash("7K3M-9X2Q-4F8T"));
        assert_eq!(hash, recovery_hash(" 7k3m 9x2q 4f8t "));
        assert_eq!(hash, recovery_hash("7k3m9x2q4f8t"));
        assert_eq!(
            hash,
            Sha256::digest(b"7k3m9x2q4f8t")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        assert_ne!(hash, recovery_hash("7k3m-9x2q-4f8u"));
    }
}
