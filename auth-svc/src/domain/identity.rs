//! The identity data a person presents (resident registration number, name, mobile phone) as
//! validated domain types, and the derivation of the pseudonymous person key (the shared
//! [`platform::ids::PersonKey`]) from the RRN.
//!
//! These types hold personal data, so their `Debug` and `Display` never print it: a stray
//! `{:?}` in a log line shows `Rrn(***)`, not the number. Only [`Name::masked`] and
//! [`Phone::masked`] are meant to be shown, and the raw RRN digits are reachable only inside
//! this crate, for the keyed hash.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use platform::ids::PersonKey;
use sha2::Sha256;

use crate::error::AuthError;

type HmacSha256 = Hmac<Sha256>;

/// A resident registration number (`YYMMDD-GNNNNNN`) whose birth date is a real date.
#[derive(Clone, PartialEq, Eq)]
pub struct Rrn {
    digits: String,
    birth_date: NaiveDate,
}

impl Rrn {
    /// Accepts `YYMMDD-GNNNNNN` or the same 13 digits without the hyphen. The check digit is
    /// not validated: numbers issued since October 2020 do not have one.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let trimmed = raw.trim();
        let digits: String = match trimmed.len() {
            14 if trimmed.as_bytes()[6] == b'-' => trimmed.chars().filter(|c| *c != '-').collect(),
            13 => trimmed.to_owned(),
            _ => return Err(AuthError::InvalidRrn),
        };
        if digits.len() != 13 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(AuthError::InvalidRrn);
        }
        let number = |range: std::ops::Range<usize>| -> u32 {
            digits[range]
                .bytes()
                .fold(0, |acc, byte| acc * 10 + u32::from(byte - b'0'))
        };
        let century = match digits.as_bytes()[6] {
            b'9' | b'0' => 1800,
            b'1' | b'2' | b'5' | b'6' => 1900,
            b'3' | b'4' | b'7' | b'8' => 2000,
            _ => return Err(AuthError::InvalidRrn),
        };
        let year = century + number(0..2) as i32;
        let birth_date = NaiveDate::from_ymd_opt(year, number(2..4), number(4..6))
            .ok_or(AuthError::InvalidRrn)?;
        Ok(Self { digits, birth_date })
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// The 7th digit (sex and century), which the carriers' agency compares.
    pub fn sex_digit(&self) -> char {
        char::from(self.digits.as_bytes()[6])
    }

    /// The 13 digits, for the keyed hash only.
    fn digits(&self) -> &str {
        &self.digits
    }
}

impl fmt::Debug for Rrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rrn(***)")
    }
}

impl fmt::Display for Rrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rrn(***)")
    }
}

/// The pseudonymous key of a person: HMAC-SHA256 of the RRN digits under a server secret,
/// base64url without padding (43 characters, within [`PersonKey`]'s limits). Every other
/// service knows the person only by this key.
pub fn derive_person_key(secret: &[u8], rrn: &Rrn) -> PersonKey {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(rrn.digits().as_bytes());
    let encoded = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    PersonKey::parse(&encoded).expect("43 base64url characters are a well-formed person key")
}

/// A person's name as registered: Hangul or Latin letters, with spaces, `·` or `-` between.
#[derive(Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    const MAX_CHARS: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > Self::MAX_CHARS {
            return Err(AuthError::InvalidName);
        }
        let allowed = |c: char| is_name_letter(c) || matches!(c, ' ' | '·' | '-');
        if !trimmed.chars().all(allowed) || !trimmed.chars().any(is_name_letter) {
            return Err(AuthError::InvalidName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name as the person typed it, trimmed: for the carriers' agency only.
    pub(crate) fn registered(&self) -> &str {
        &self.0
    }

    /// The form two spellings of the same registered name share: single spaces, lower case
    /// (Latin names arrive from providers in either case). Only for keyed hashing.
    pub(crate) fn normalized(&self) -> String {
        self.0
            .split(' ')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }

    /// The name as shown back to the person: first and last character kept, the rest starred
    /// (홍길동 → 홍*동, 홍길 → 홍*). Latin names follow the same rule over the whole string.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        match chars.as_slice() {
            [] => String::new(),
            [_] => "*".to_owned(),
            [first, _] => format!("{first}*"),
            [first, middle @ .., last] => {
                format!("{first}{}{last}", "*".repeat(middle.len()))
            }
        }
    }
}

fn is_name_letter(c: char) -> bool {
    let hangul_syllable = ('\u{AC00}'..='\u{D7A3}').contains(&c);
    let latin_with_marks =
        ('\u{00C0}'..='\u{024F}').contains(&c) && c != '\u{00D7}' && c != '\u{00F7}';
    c.is_ascii_alphabetic() || hangul_syllable || latin_with_marks
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Name(***)")
    }
}

/// A Korean mobile number: `01[016789]` followed by 7 or 8 digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let digits: String = raw
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .collect();
        let well_formed = matches!(digits.len(), 10 | 11)
            && digits.bytes().all(|byte| byte.is_ascii_digit())
            && digits.starts_with("01")
            && matches!(
                digits.as_bytes()[2],
                b'0' | b'1' | b'6' | b'7' | b'8' | b'9'
            );
        if !well_formed {
            return Err(AuthError::InvalidPhone);
        }
        Ok(Self(digits))
    }

    /// The three parts: prefix, middle (3 or 4 digits), last four digits.
    fn parts(&self) -> (&str, &str, &str) {
        let last_start = self.0.len() - 4;
        (&self.0[..3], &self.0[3..last_start], &self.0[last_start..])
    }

    /// The digits only, `01012345678`: for the carriers' agency and keyed hashes only.
    pub(crate) fn digits(&self) -> &str {
        &self.0
    }

    /// The number as an SMS gateway expects it: `010-1234-5678`.
    pub fn formatted(&self) -> String {
        let (prefix, middle, last) = self.parts();
        format!("{prefix}-{middle}-{last}")
    }

    /// The number as shown back to the person: `010-****-5678`.
    pub fn masked(&self) -> String {
        let (prefix, middle, last) = self.parts();
        format!("{prefix}-{}-{last}", "*".repeat(middle.len()))
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(***)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use platform::problem::{Problem, ProblemKind};

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn rrn_gender_digit_gives_the_century() {
        let cases = [
            ("900101-1234567", date(1990, 1, 1)),
            ("900101-2234567", date(1990, 1, 1)),
            ("050709-3234567", date(2005, 7, 9)),
            ("050709-4234567", date(2005, 7, 9)),
            ("991231-9234567", date(1899, 12, 31)),
            ("991231-0234567", date(1899, 12, 31)),
            ("851119-5234567", date(1985, 11, 19)),
            ("851119-6234567", date(1985, 11, 19)),
            ("101029-7234567", date(2010, 10, 29)),
            ("101029-8234567", date(2010, 10, 29)),
        ];
        for (raw, birth_date) in cases {
            assert_eq!(Rrn::parse(raw).unwrap().birth_date(), birth_date, "{raw}");
        }
    }

    #[test]
    fn rrn_is_accepted_without_the_hyphen_and_equals_the_hyphenated_form() {
        let plain = Rrn::parse("7601014234567").unwrap();
        let hyphenated = Rrn::parse("760101-4234567").unwrap();
        assert_eq!(plain, hyphenated);
        assert_eq!(plain.birth_date(), date(2076, 1, 1));
    }

    #[test]
    fn rrn_check_digit_is_not_validated() {
        // Same birth date and serial, every possible last digit: all accepted.
        for last in 0..10 {
            assert!(Rrn::parse(&format!("800229-112345{last}")).is_ok());
        }
    }

    #[test]
    fn rrn_rejects_malformed_input_and_unreal_dates() {
        let bad = [
            "",
            "900101",
            "900101-123456",
            "900101-12345678",
            "900101_1234567",
            "9001011-234567",
            "90010a-1234567",
            "900101--234567",
            "901301-1234567", // month 13
            "900132-1234567", // day 32
            "010229-3234567", // 2001-02-29 does not exist
            "000229-1234567", // 1900-02-29 does not exist (1900 is no leap year)
            "900101-ㄱ234567",
        ];
        for raw in bad {
            let problem = Problem::from(Rrn::parse(raw).unwrap_err());
            assert_eq!(problem.kind, ProblemKind::InvalidIdentity, "{raw}");
            assert_eq!(
                problem.detail,
                "rrn must be YYMMDD-GNNNNNN with a valid birth date"
            );
        }
        // 2000 is a leap year, so 2000-02-29 (G=3) is real.
        assert_eq!(
            Rrn::parse("000229-3234567").unwrap().birth_date(),
            date(2000, 2, 29)
        );
    }

    #[test]
    fn rrn_never_prints_its_digits() {
        let rrn = Rrn::parse("900101-1234567").unwrap();
        for shown in [format!("{rrn:?}"), format!("{rrn}"), format!("{rrn:#?}")] {
            assert_eq!(shown, "Rrn(***)");
        }
    }

    #[test]
    fn person_key_is_a_keyed_hash_of_the_digits() {
        let rrn = Rrn::parse("900101-1234567").unwrap();
        let same = Rrn::parse("9001011234567").unwrap();
        let other = Rrn::parse("900101-1234568").unwrap();
        let key = derive_person_key(b"secret-a", &rrn);
        assert_eq!(key, derive_person_key(b"secret-a", &same));
        assert_ne!(key, derive_person_key(b"secret-a", &other));
        assert_ne!(key, derive_person_key(b"secret-b", &rrn));
        // 32 bytes in base64url without padding.
        assert_eq!(key.as_str().len(), 43);
        assert!(
            key.as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(!key.as_str().contains("1234567"));
        // Independent recomputation of the HMAC.
        let mut mac = HmacSha256::new_from_slice(b"secret-a").unwrap();
        mac.update(b"9001011234567");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(key.as_str()).unwrap(),
            mac.finalize().into_bytes().to_vec()
        );
    }

    #[test]
    fn names_are_trimmed_and_limited_to_letters_and_separators() {
        assert_eq!(Name::parse("  홍길동 ").unwrap().masked(), "홍*동");
        assert!(Name::parse("Mary-Jane O Neil").is_ok());
        assert!(Name::parse("제임스·본드").is_ok());
        assert!(Name::parse("Zoë Ångström").is_ok());
        assert!(Name::parse(&"가".repeat(50)).is_ok());
        let bad = [
            "",
            "   ",
            "-",
            "· -",
            "홍길동1",
            "Robert'); DROP",
            "홍\t길동",
            "山田太郎",
            "Иван",
            "a×b",
        ];
        for raw in bad {
            let problem = Problem::from(Name::parse(raw).unwrap_err());
            assert_eq!(problem.kind, ProblemKind::InvalidIdentity, "{raw:?}");
        }
        assert!(Name::parse(&"가".repeat(51)).is_err());
    }

    #[test]
    fn names_normalize_spacing_and_case_only() {
        let normalized = |raw: &str| Name::parse(raw).unwrap().normalized();
        assert_eq!(normalized(" 홍길동 "), "홍길동");
        assert_eq!(normalized("JOHN  Smith"), "john smith");
        assert_eq!(normalized("john smith"), normalized("John Smith"));
        assert_ne!(normalized("홍길동"), normalized("홍길순"));
        assert_ne!(normalized("johnsmith"), normalized("john smith"));
    }

    #[test]
    fn names_are_masked_keeping_first_and_last() {
        let masked = |raw: &str| Name::parse(raw).unwrap().masked();
        assert_eq!(masked("홍"), "*");
        assert_eq!(masked("홍길"), "홍*");
        assert_eq!(masked("홍길동"), "홍*동");
        assert_eq!(masked("남궁길동"), "남**동");
        assert_eq!(masked("John"), "J**n");
        assert_eq!(masked("John Smith"), "J********h");
    }

    #[test]
    fn phones_accept_hyphens_and_spaces_and_mobile_prefixes_only() {
        assert_eq!(
            Phone::parse("010-1234-5678").unwrap().formatted(),
            "010-1234-5678"
        );
        assert_eq!(
            Phone::parse("010 1234 5678").unwrap(),
            Phone::parse("01012345678").unwrap()
        );
        assert_eq!(
            Phone::parse("011-234-5678").unwrap().formatted(),
            "011-234-5678"
        );
        for prefix in ["010", "011", "016", "017", "018", "019"] {
            assert!(
                Phone::parse(&format!("{prefix}12345678")).is_ok(),
                "{prefix}"
            );
        }
        let bad = [
            "",
            "02-1234-5678",
            "012-1234-5678",
            "015-1234-5678",
            "010-123-456",
            "010-1234-56789",
            "010.1234.5678",
            "+82-10-1234-5678",
            "010-ABCD-5678",
        ];
        for raw in bad {
            let problem = Problem::from(Phone::parse(raw).unwrap_err());
            assert_eq!(problem.kind, ProblemKind::InvalidIdentity, "{raw}");
        }
    }

    #[test]
    fn phones_are_masked_in_the_middle() {
        assert_eq!(
            Phone::parse("01012345678").unwrap().masked(),
            "010-****-5678"
        );
        assert_eq!(Phone::parse("0112345678").unwrap().masked(), "011-***-5678");
    }

    #[test]
    fn debug_output_carries_no_digits_of_the_input() {
        let rrn = Rrn::parse("900101-1234567").unwrap();
        let phone = Phone::parse("010-9876-5432").unwrap();
        let name = Name::parse("홍길동").unwrap();
        let shown = format!("{rrn:?} {phone:?} {name:?} {:?}", (&rrn, &phone, &name));
        assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
        assert!(!shown.contains("길"), "{shown}");
    }
}
