//! Redaction: takes e-mail addresses and phone numbers out of text that client-facing answers may
//! quote.
//!
//! A small hand-written scanner, tuned for repair notes: it replaces
//!
//! * e-mail addresses (`local@domain.tld`, internationalised letters allowed) with `[email]`;
//! * US numbers — `(410) 555-0123`, `410-555-0123`, `410.555.0123`, `410 555 0123`, `4105550123`,
//!   optionally after a `1` — with a valid NANP area code and exchange (first digit 2–9), and
//!   international numbers written with a `+` (E.164: 8 to 15 digits, e.g. `+44 20 7946 0958`,
//!   `+1 410 555 0123`) with `[phone]`;
//!
//! and leaves alone what merely looks numeric: voltages (`84V`, `100.8 V`), serials (`BG-134-0042`,
//! `M/7781`), part numbers (`XT90`, `21700`), prices (`$89.99`), dates (`2026-11-25`), times
//! (`10:00`) and model names (`V13`, `16X`). A number glued to letters, or following `$`, `#`,
//! `/`, `-` or `.`, is never a phone number. Redacting is idempotent.

/// Replaces an e-mail address.
pub const EMAIL: &str = "[email]";
/// Replaces a phone number.
pub const PHONE: &str = "[phone]";

/// `text` with e-mail addresses replaced by [`EMAIL`] and phone numbers by [`PHONE`].
pub fn redact(text: &str) -> String {
    redact_phones(&redact_emails(text))
}

/// Whether `text` contains anything [`redact`] would replace.
pub fn contains_personal_data(text: &str) -> bool {
    redact(text) != text
}

// ---------------------------------------------------------------------------------------------
// E-mail

/// Scripts written without spaces: letters of these never join an address, so the text around
/// an address in Chinese or Japanese survives.
fn is_spaceless_script(c: char) -> bool {
    matches!(c,
        '\u{2E80}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7AF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF00}'..='\u{FFEF}'
        | '\u{20000}'..='\u{3FFFF}')
}

fn is_addr_alnum(c: char) -> bool {
    c.is_alphanumeric() && !is_spaceless_script(c)
}

fn is_local_char(c: char) -> bool {
    is_addr_alnum(c) || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_domain_char(c: char) -> bool {
    is_addr_alnum(c) || matches!(c, '.' | '-')
}

fn valid_domain(domain: &[char]) -> bool {
    let labels: Vec<&[char]> = domain.split(|&c| c == '.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.first() != Some(&'-') && l.last() != Some(&'-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.iter().all(|c| c.is_alphabetic()))
}

fn redact_emails(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < c.len() {
        if c[i] != '@' {
            i += 1;
            continue;
        }
        let mut left = i;
        while left > copied && is_local_char(c[left - 1]) {
            left -= 1;
        }
        while left < i && c[left] == '.' {
            left += 1;
        }
        let mut right = i + 1;
        while right < c.len() && is_domain_char(c[right]) {
            right += 1;
        }
        while right > i + 1 && matches!(c[right - 1], '.' | '-') {
            right -= 1;
        }
        if left < i && valid_domain(&c[i + 1..right]) {
            out.extend(&c[copied..left]);
            out.push_str(EMAIL);
            copied = right;
            i = right;
        } else {
            i += 1;
        }
    }
    out.extend(&c[copied..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

/// A run of digits, or digits in parentheses: `(410)`.
#[derive(Debug)]
struct Group {
    digits: String,
    paren: bool,
    /// Index after the group (after `)` when parenthesised).
    end: usize,
}

/// Most digits in a phone number (E.164).
const MAX_DIGITS: usize = 15;

fn is_phone_sep(c: char) -> bool {
    matches!(c, ' ' | '\u{A0}' | '\u{202F}' | '-' | '.')
}

/// Whether a number may start at `c[i]` given the character before it.
fn start_ok(c: &[char], i: usize) -> bool {
    let Some(&prev) = i.checked_sub(1).and_then(|j| c.get(j)) else {
        return true;
    };
    if is_addr_alnum(prev) {
        return false;
    }
    if matches!(c[i], '+' | '(') {
        return true;
    }
    !matches!(
        prev,
        '$' | '€'
            | '£'
            | '¥'
            | '#'
            | '/'
            | '\\'
            | '_'
            | '-'
            | '.'
            | '+'
            | '@'
            | '%'
            | '&'
            | '='
            | '*'
            | '~'
            | '^'
            | '№'
    )
}

/// Whether a number may end before `c[e]` given what follows.
fn end_ok(c: &[char], e: usize) -> bool {
    let Some(&next) = c.get(e) else {
        return true;
    };
    let after = c.get(e + 1).copied();
    if is_addr_alnum(next)
        || matches!(
            next,
            '%' | '°' | '@' | '$' | '€' | '£' | '_' | '/' | '\\' | '+' | '″' | '\''
        )
    {
        return false;
    }
    match next {
        '-' => !after.is_some_and(char::is_alphanumeric),
        '.' | ':' => !after.is_some_and(|a| a.is_ascii_digit()),
        _ => true,
    }
}

/// The groups of the number-like run starting at `c[start]` (a digit, `+` or `(`): digit runs
/// and parenthesised digits, joined by at most one separator each.
fn scan_groups(c: &[char], start: usize) -> (bool, Vec<Group>) {
    let plus = c[start] == '+';
    let mut p = if plus { start + 1 } else { start };
    let mut groups = Vec::new();
    loop {
        let group = if c.get(p) == Some(&'(') {
            let digits: String = c[p + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .collect();
            let close = p + 1 + digits.len();
            if digits.is_empty() || c.get(close) != Some(&')') {
                break;
            }
            Group {
                digits,
                paren: true,
                end: close + 1,
            }
        } else if c.get(p).is_some_and(|d| d.is_ascii_digit()) {
            let digits: String = c[p..].iter().take_while(|d| d.is_ascii_digit()).collect();
            Group {
                end: p + digits.len(),
                digits,
                paren: false,
            }
        } else {
            break;
        };
        p = group.end;
        groups.push(group);
        // No phone number has more digits; longer runs only need their prefixes checked.
        if groups.iter().map(|g| g.digits.len()).sum::<usize>() > MAX_DIGITS {
            break;
        }
        let mut q = p;
        if c.get(q).is_some_and(|&s| is_phone_sep(s)) {
            q += 1;
        }
        if c.get(q).is_some_and(|&d| d.is_ascii_digit() || d == '(') {
            p = q;
        } else {
            break;
        }
    }
    (plus, groups)
}

/// NANP: ten digits whose area code and exchange start with 2–9.
fn nanp(digits: &str) -> bool {
    let d = digits.as_bytes();
    d.len() == 10 && (b'2'..=b'9').contains(&d[0]) && (b'2'..=b'9').contains(&d[3])
}

fn valid_phone(plus: bool, groups: &[Group]) -> bool {
    let Some(first) = groups.first() else {
        return false;
    };
    let total: usize = groups.iter().map(|g| g.digits.len()).sum();
    if !(8..=MAX_DIGITS).contains(&total) || (!plus && (groups.len() > 4 || total < 10)) {
        return false;
    }
    let all: String = groups.iter().map(|g| g.digits.as_str()).collect();
    if plus {
        // E.164: country code (1–3 digits when written apart, not 0), 8 to 15 digits in all.
        if first.paren
            || all.starts_with('0')
            || !(8..=MAX_DIGITS).contains(&all.len())
            || (groups.len() > 1 && first.digits.len() > 3)
        {
            return false;
        }
        // +1 is the NANP: exactly a 1 and ten digits.
        return !all.starts_with('1') || (all.len() == 11 && nanp(&all[1..]));
    }
    let rest = if groups.len() > 1 && first.digits == "1" && !first.paren {
        &groups[1..]
    } else {
        groups
    };
    match rest {
        [g] if !g.paren && g.digits.len() == 10 => nanp(&g.digits),
        [g] if !g.paren && groups.len() == 1 && g.digits.len() == 11 => {
            g.digits.starts_with('1') && nanp(&g.digits[1..])
        }
        [a, b, d]
            if a.digits.len() == 3
                && b.digits.len() == 3
                && d.digits.len() == 4
                && !b.paren
                && !d.paren =>
        {
            nanp(&all[all.len() - 10..])
        }
        _ => false,
    }
}

fn redact_phones(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let could_start = ch.is_ascii_digit()
            || (matches!(ch, '+' | '(') && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()));
        if could_start && start_ok(&c, i) {
            let (plus, groups) = scan_groups(&c, i);
            let found = (1..=groups.len()).rev().find_map(|k| {
                let end = groups[k - 1].end;
                (valid_phone(plus, &groups[..k]) && end_ok(&c, end)).then_some(end)
            });
            if let Some(end) = found {
                out.extend(&c[copied..i]);
                out.push_str(PHONE);
                copied = end;
                i = end;
                continue;
            }
        }
        if ch.is_ascii_digit() {
            while i < c.len() && c[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out.extend(&c[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn same(text: &str) {
        assert_eq!(redact(text), text, "should stay as is");
    }

    #[test]
    fn emails() {
        assert_eq!(
            redact("Mail jane.doe+pev@example.com about it."),
            "Mail [email] about it."
        );
        assert_eq!(
            redact("<ops@juice-junkiez.co.uk>, mailto:a_b@mail.example.org"),
            "<[email]>, mailto:[email]"
        );
        assert_eq!(redact("410-555-0123@sms.example.net"), "[email]");
        same("user@localhost and @handle and a@b.c and email@ and @example.com");
        same("Torque 5 N@m on M/7781");
    }

    #[test]
    fn us_phone_formats() {
        for phone in [
            "(410) 555-0123",
            "(410)555-0123",
            "410-555-0123",
            "410.555.0123",
            "410 555 0123",
            "4105550123",
            "+1 410 555 0123",
            "+1-410-555-0123",
            "+1 (410) 555-0123",
            "+14105550123",
            "1-410-555-0123",
            "1 (410) 555-0123",
        ] {
            assert_eq!(
                redact(&format!("Call {phone}, thanks.")),
                "Call [phone], thanks.",
                "{phone}"
            );
            assert_eq!(redact(phone), PHONE, "{phone}");
        }
        assert_eq!(
            redact("Phone:410-555-0123;alt (410) 555-0199 or 410.555.0100."),
            "Phone:[phone];alt [phone] or [phone]."
        );
        assert_eq!(redact("410-555-0123,410-555-0124"), "[phone],[phone]");
    }

    #[test]
    fn international_phones() {
        for phone in [
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "+442079460958",
            "+49 30 12345678",
            "+33 1 23 45 67 89",
            "+61-2-9876-5432",
        ] {
            assert_eq!(
                redact(&format!("Ring {phone} today")),
                "Ring [phone] today",
                "{phone}"
            );
        }
    }

    #[test]
    fn repair_note_numbers_stay() {
        same("Pack is 84V, charged to 100.8 V, 20Ah, 1200 mAh, 4.2 V/cell, +5V rail, -12 V.");
        same("Serial BG-134-0042, frame M/7781, board #4105550123, ref SN-410-555-0123.");
        same("Swapped XT90 for XT60; 21700 and 18650 cells; 20S4P pack.");
        same("Total $89.99 (was $129.00), €45, 1,299.00 USD, 15% off.");
        same("Booked 2026-11-25 at 10:00, pickup 11/25/2026 10:30-12:00.");
        same("Models V13, 16X, EX30, Master v2, S22 2024.");
        same("Firmware 4105550123X, build 410.555.0123.7, id 410-555-0123-A.");
        same("Old numbers: 555-0123, 1105550123 and 4101550123 (no valid area or exchange).");
        same("Unix time 1700000000, part 1234567890123, temp 25°C.");
    }

    #[test]
    fn number_sequences_do_not_swallow_phones() {
        assert_eq!(
            redact("2026-11-25 410-555-0123 10:00"),
            "2026-11-25 [phone] 10:00"
        );
        assert_eq!(redact("Qty 2 410 555 0123"), "Qty 2 [phone]");
        assert_eq!(
            redact("$89.99 to jane@example.com or 4105550123."),
            "$89.99 to [email] or [phone]."
        );
    }

    #[test]
    fn idempotent() {
        let samples = [
            "Call (410) 555-0123 or mail jane@example.com; pack 84V, $89.99, 2026-11-25 10:00.",
            "+44 20 7946 0958 +1 410 555 0123 4105550123 1 410 555 0123",
            "a@b.c@d.com 4105550123@x.com x@y.com4105550123 [phone] [email]",
            "2 410 555 0123 2026 BG-134-0042 21700 +5V (410)555-0123)",
            "Звоните +7 495 123-45-67, пишите иван@пример.рф",
        ];
        for s in samples {
            let once = redact(s);
            assert_eq!(redact(&once), once, "{s}");
        }
    }

    #[test]
    fn unicode_around_matches() {
        assert_eq!(
            redact("Звоните: +44 20 7946 0958 — спасибо!"),
            "Звоните: [phone] — спасибо!"
        );
        assert_eq!(
            redact("Tél. (410) 555-0123, merci ☺ · jürgen.müller@beispiel.de 🔋"),
            "Tél. [phone], merci ☺ · [email] 🔋"
        );
        assert_eq!(
            redact("请联系bob@example.com谢谢，电话410-555-0123。"),
            "请联系[email]谢谢，电话[phone]。"
        );
        assert_eq!(redact("«4105550123»"), "«[phone]»");
        same("Überspannung bei 84V – Seriennr. BG-134-0042 ✓");
    }

    #[test]
    fn long_number_runs_are_fast() {
        let text = "1 ".repeat(50_000) + &"7".repeat(50_000) + " 410-555-0123";
        let started = std::time::Instant::now();
        assert!(redact(&text).ends_with(" [phone]"));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn contains_personal_data_flags() {
        assert!(contains_personal_data("ring 410-555-0123"));
        assert!(!contains_personal_data("XT90 at 84V"));
    }
}
