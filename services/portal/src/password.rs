//! Staff passwords: storage and choice (OWASP ASVS level 2, NIST SP 800-63B).
//!
//! - [`hash`]: argon2id with the OWASP parameters (m = 19456 KiB, t = 2, p = 1), a fresh random
//!   16-byte salt from the OS, as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//! - [`verify`]: checks a typed password against a stored PHC string with the parameters that
//!   string names; the crate compares the outputs in constant time. Anything unparseable is
//!   simply "no".
//! - [`needs_rehash`]: true when a stored string is weaker than what [`hash`] makes now (another
//!   algorithm or version, less memory, fewer passes, a shorter output, or unreadable). After a
//!   successful [`verify`], the caller hashes the typed password again and stores the new string.
//! - [`check_policy`]: what a new password must satisfy. At least [`MIN_CHARS`] and at most
//!   [`MAX_CHARS`] characters (Unicode scalar values), no composition rules, spaces allowed; not
//!   one of the 10,000 most common passwords (any case); not equal to or containing a context
//!   word (the person's name, their email's local part, the shop's name) of 4 or more characters.
//!   Each refusal is a sentence to show the person as it is.
//!
//! The common-password list is `data/common-passwords.txt` (its origin is in `data/README.md`),
//! embedded in the binary and turned into a set once, on first use.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use argon2::password_hash::Error as HashError;
use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier,
    Version,
};

/// Fewest characters a password may have (NIST 800-63B, ASVS 2.1.1).
pub const MIN_CHARS: usize = 8;
/// Most characters a password may have (ASVS 2.1.2 asks that at least 64 be allowed).
pub const MAX_CHARS: usize = 128;
/// Context words shorter than this are not checked (too many innocent passwords contain them).
pub const MIN_CONTEXT_CHARS: usize = 4;

/// argon2id memory in KiB (OWASP password storage cheat sheet: 19 MiB).
pub const M_COST: u32 = 19_456;
/// argon2id passes.
pub const T_COST: u32 = 2;
/// argon2id lanes.
pub const P_COST: u32 = 1;
/// Hash output length in bytes.
pub const OUTPUT_LEN: usize = 32;

/// Words that no staff password may be or contain, whatever the caller passes.
const SHOP_WORDS: [&str; 2] = ["juicejunkiez", "juice junkiez"];

/// The common-password list as shipped (one password a line).
const COMMON_LIST: &str = include_str!("../data/common-passwords.txt");

/// The list, lower-cased, built once.
static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COMMON_LIST
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .map(str::to_lowercase)
        .collect()
});

/// Hashing failed; nothing a person typed can fix it.
#[derive(Debug)]
pub enum PasswordError {
    /// The argon2 parameters were refused (a programming error).
    Params(argon2::Error),
    /// Salt generation or hashing failed.
    Hash(HashError),
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Params(e) => write!(f, "argon2 parameters refused: {e}"),
            Self::Hash(e) => write!(f, "password hashing failed: {e}"),
        }
    }
}

impl std::error::Error for PasswordError {}

/// Why a new password was refused. `Display` is the sentence to show the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    TooShort,
    TooLong,
    Common,
    /// Holds the context word that matched (as the caller gave it).
    ContainsContext(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => write!(f, "Use at least {MIN_CHARS} characters."),
            Self::TooLong => write!(f, "Use at most {MAX_CHARS} characters."),
            Self::Common => {
                f.write_str("That password is one of the most common ones; choose another.")
            }
            Self::ContainsContext(word) => write!(
                f,
                "Don't use your name, your email address or the shop's name (\u{201c}{word}\u{201d}) in your password."
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The hasher with the current parameters.
fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(M_COST, T_COST, P_COST, Some(OUTPUT_LEN)).map_err(PasswordError::Params)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with argon2id and a fresh random salt; returns the PHC string to store.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let phc = hasher()?
        .hash_password(password.as_bytes())
        .map_err(PasswordError::Hash)?;
    Ok(phc.to_string())
}

/// Whether `password` matches the stored PHC string (constant-time comparison in the crate).
/// A malformed string, or one for another algorithm, never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if Algorithm::new(parsed.algorithm.as_str()).is_err() {
        return false;
    }
    // The parameters come from the string itself, not from the instance.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Whether a stored PHC string is weaker than what [`hash`] makes now (or can't be read), so the
/// password should be hashed again after the next successful [`verify`].
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    if parsed.algorithm != ARGON2ID_IDENT || parsed.version != Some(u32::from(Version::V0x13)) {
        return true;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    params.m_cost() < M_COST
        || params.t_cost() < T_COST
        || params.p_cost() < P_COST
        || params.output_len().unwrap_or(0) < OUTPUT_LEN
}

/// Whether `password` (compared lower-cased) is on the common-password list.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON.contains(&lower) || COMMON.contains(lower.trim())
}

/// Checks a new password against the policy. `context` holds words tied to the account (the
/// person's name, their email address or its local part, …); the shop's name is always checked.
/// Words shorter than [`MIN_CONTEXT_CHARS`] are ignored; for an email address its local part is
/// checked too.
pub fn check_policy(password: &str, context: &[&str]) -> Result<(), PolicyError> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PolicyError::TooLong);
    }
    if is_common(password) {
        return Err(PolicyError::Common);
    }
    let lower = password.to_lowercase();
    let words = context.iter().chain(SHOP_WORDS.iter()).flat_map(|w| {
        let w = w.trim();
        let local = w.split_once('@').map(|(local, _)| local.trim());
        std::iter::once(w).chain(local)
    });
    for word in words {
        if word.chars().count() < MIN_CONTEXT_CHARS {
            continue;
        }
        if lower.contains(&word.to_lowercase()) {
            return Err(PolicyError::ContainsContext(word.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

    #[test]
    fn hash_and_verify_round_trip() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with(PREFIX), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapl", &phc));
        assert!(!verify("Correct horse battery staple", &phc));
        assert!(!verify("", &phc));
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn salts_differ_and_unicode_works() {
        let a = hash("pässwörd mit ümläuten").unwrap();
        let b = hash("pässwörd mit ümläuten").unwrap();
        assert_ne!(a, b);
        assert!(verify("pässwörd mit ümläuten", &a));
        assert!(verify("pässwörd mit ümläuten", &b));
    }

    #[test]
    fn malformed_or_foreign_strings_never_verify() {
        for phc in [
            "",
            "plain",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$2b$12$abcdefghijklmnopqrstuv",
        ] {
            assert!(!verify("anything", phc), "{phc}");
            assert!(needs_rehash(phc), "{phc}");
        }
    }

    #[test]
    fn weaker_hashes_need_rehash_but_still_verify() {
        let weak = |algorithm, m, t| {
            let params = Params::new(m, t, 1, None).unwrap();
            Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"old password here")
                .unwrap()
                .to_string()
        };
        for phc in [
            weak(Algorithm::Argon2id, 4096, 3),
            weak(Algorithm::Argon2id, M_COST, 1),
            weak(Algorithm::Argon2i, M_COST, T_COST),
        ] {
            assert!(needs_rehash(&phc), "{phc}");
            assert!(verify("old password here", &phc), "{phc}");
        }
        let stronger = weak(Algorithm::Argon2id, M_COST * 2, 3);
        assert!(!needs_rehash(&stronger));
    }

    #[test]
    fn length_limits() {
        assert_eq!(check_policy("", &[]), Err(PolicyError::TooShort));
        assert_eq!(check_policy("Zq7#vLp", &[]), Err(PolicyError::TooShort));
        assert_eq!(check_policy("Zq7#vLp2", &[]), Ok(()));
        // Characters, not bytes: 8 two-byte letters are enough, 7 are not.
        assert_eq!(check_policy("ŵŷžŧœøåæ", &[]), Ok(()));
        assert_eq!(check_policy("ŵŷžŧœøå", &[]), Err(PolicyError::TooShort));
        let at_max: String = "kx9".repeat(43).chars().take(MAX_CHARS).collect();
        assert_eq!(at_max.chars().count(), 128);
        assert_eq!(check_policy(&at_max, &[]), Ok(()));
        let over = format!("{at_max}q");
        assert_eq!(check_policy(&over, &[]), Err(PolicyError::TooLong));
        let sixty_four: String = "mq4z".repeat(16);
        assert_eq!(check_policy(&sixty_four, &[]), Ok(()));
    }

    #[test]
    fn common_passwords_refused_in_any_case() {
        for p in [
            "password",
            "PASSWORD",
            "Password",
            "12345678",
            "iloveyou",
            "qwertyuiop",
            "baseball",
        ] {
            assert_eq!(check_policy(p, &[]), Err(PolicyError::Common), "{p}");
        }
        assert!(is_common("123456"));
        assert!(is_common("PassWord"));
        assert!(!is_common("violet tractor on the ridge"));
    }

    #[test]
    fn context_words_refused() {
        let ctx = ["alex.rivera@example.com", "Alex Rivera", "Jo"];
        assert_eq!(
            check_policy("alex.rivera", &ctx),
            Err(PolicyError::ContainsContext("alex.rivera".into()))
        );
        assert_eq!(
            check_policy("MyNameIsAlex.Rivera!", &ctx),
            Err(PolicyError::ContainsContext("alex.rivera".into()))
        );
        assert_eq!(
            check_policy("hello alex rivera 99", &ctx),
            Err(PolicyError::ContainsContext("Alex Rivera".into()))
        );
        assert!(matches!(
            check_policy("JuiceJunkiez2024", &[]),
            Err(PolicyError::ContainsContext(_))
        ));
        assert!(matches!(
            check_policy("i work at juice junkiez", &[]),
            Err(PolicyError::ContainsContext(_))
        ));
        // Words under 4 characters are not checked.
        assert_eq!(check_policy("jovial tractor", &ctx), Ok(()));
    }

    #[test]
    fn long_passphrase_with_spaces_accepted() {
        let ctx = ["sam@example.com", "Sam Okafor"];
        assert_eq!(
            check_policy("purple tractor eats seven waffles at noon", &ctx),
            Ok(())
        );
        assert_eq!(check_policy("   spaces   only   ", &ctx), Ok(()));
    }

    #[test]
    fn messages_are_sentences() {
        assert_eq!(
            PolicyError::TooShort.to_string(),
            "Use at least 8 characters."
        );
        assert_eq!(
            PolicyError::TooLong.to_string(),
            "Use at most 128 characters."
        );
        assert_eq!(
            PolicyError::Common.to_string(),
            "That password is one of the most common ones; choose another."
        );
        let m = PolicyError::ContainsContext("Alex".into()).to_string();
        assert!(
            m.starts_with("Don't use") && m.ends_with('.') && m.contains("Alex"),
            "{m}"
        );
    }

    #[test]
    fn the_list_is_loaded() {
        assert!(COMMON.len() >= 9_000, "{}", COMMON.len());
        assert!(COMMON.contains("password"));
        assert!(COMMON.contains("123456"));
        assert!(!COMMON.contains(""));
        assert!(COMMON.iter().all(|p| *p == p.to_lowercase()));
    }
}
