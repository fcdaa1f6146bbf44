//! IIN and BIN: Kazakhstan's 12-digit identification numbers of individuals
//! (IIN) and legal entities (BIN).
//!
//! Both end in a check digit computed the official way: the first eleven
//! digits weighted 1..=11, summed, taken modulo 11; if that gives 10, the
//! weights 3,4,5,6,7,8,9,10,11,1,2 are used instead; if that again gives 10 the
//! number is invalid (no such number is ever issued). Anything that is not
//! twelve ASCII digits with a matching check digit is refused with the reason.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TypesError;

const FIRST_WEIGHTS: [u32; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const SECOND_WEIGHTS: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/// A validated IIN or BIN.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize)]
pub struct IinBin([u8; 12]);

/// What the digits say a number belongs to. The fifth digit of an IIN is the
/// tens of the birth day (0–3); of a BIN, the entity type (4–6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IinBinKind {
    /// An individual's IIN.
    Individual,
    /// A legal entity's (or individual entrepreneur's) BIN.
    LegalEntity,
}

/// The check digit for the first eleven digits, or `None` when the rule gives
/// 10 twice (such numbers are not issued).
pub fn check_digit(first_eleven: &[u8; 11]) -> Option<u8> {
    let weighted = |weights: &[u32; 11]| -> u32 {
        first_eleven.iter().zip(weights).map(|(d, w)| u32::from(*d) * w).sum::<u32>() % 11
    };
    let first = weighted(&FIRST_WEIGHTS);
    if first != 10 {
        return u8::try_from(first).ok();
    }
    let second = weighted(&SECOND_WEIGHTS);
    if second != 10 {
        return u8::try_from(second).ok();
    }
    None
}

impl IinBin {
    /// Parses and checks a 12-digit IIN/BIN.
    pub fn parse(text: &str) -> Result<IinBin, TypesError> {
        let bad = |reason: &'static str| TypesError::IinBin { input: text.chars().take(20).collect(), reason };
        let bytes = text.as_bytes();
        if bytes.len() != 12 {
            return Err(bad("must be exactly 12 digits"));
        }
        let mut digits = [0u8; 12];
        for (slot, byte) in digits.iter_mut().zip(bytes) {
            if !byte.is_ascii_digit() {
                return Err(bad("must contain digits only"));
            }
            *slot = byte - b'0';
        }
        let mut first_eleven = [0u8; 11];
        first_eleven.copy_from_slice(&digits[..11]);
        match check_digit(&first_eleven) {
            None => Err(bad("no valid check digit exists for these digits")),
            Some(d) if d != digits[11] => Err(bad("check digit does not match")),
            Some(_) => Ok(IinBin(digits)),
        }
    }

    /// Completes eleven digits with their check digit (used to make test and
    /// demo identities); `None` if no check digit exists.
    pub fn with_check_digit(first_eleven: &[u8; 11]) -> Option<IinBin> {
        if first_eleven.iter().any(|d| *d > 9) {
            return None;
        }
        let check = check_digit(first_eleven)?;
        let mut digits = [0u8; 12];
        digits[..11].copy_from_slice(first_eleven);
        digits[11] = check;
        Some(IinBin(digits))
    }

    /// Individual or legal entity, from the fifth digit.
    pub fn kind(&self) -> IinBinKind {
        if self.0[4] <= 3 { IinBinKind::Individual } else { IinBinKind::LegalEntity }
    }
}

impl fmt::Display for IinBin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for IinBin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IinBin({self})")
    }
}

impl FromStr for IinBin {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<IinBin, TypesError> {
        IinBin::parse(s)
    }
}

impl BorshDeserialize for IinBin {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let raw = <[u8; 12]>::deserialize_reader(reader)?;
        let text: String = raw.iter().map(|d| char::from(b'0'.wrapping_add(*d))).collect();
        IinBin::parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl Serialize for IinBin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IinBin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(deserializer)?;
        IinBin::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_bin_shown_in_the_seed() {
        // Fig. 13 of the seed shows BIN 011123715493.
        let bin = IinBin::parse("011123715493").expect("seed BIN is valid");
        assert_eq!(bin.to_string(), "011123715493");
    }

    #[test]
    fn uses_second_weights_when_the_first_sum_gives_ten() {
        // Find eleven digits whose first weighted sum is 10 mod 11 and check the
        // second pass decides the digit.
        let digits = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        // 1 * 10 = 10 -> second pass: 1 * 1 = 1
        assert_eq!(check_digit(&digits), Some(1));
        let iin = IinBin::with_check_digit(&digits).expect("exists");
        assert!(IinBin::parse(&iin.to_string()).is_ok());
    }

    #[test]
    fn refuses_numbers_without_a_valid_check_digit() {
        // 00028100000: both weighted sums are 10 mod 11, so no check digit exists.
        let digits = [0, 0, 0, 2, 8, 1, 0, 0, 0, 0, 0];
        assert_eq!(check_digit(&digits), None);
        assert!(IinBin::with_check_digit(&digits).is_none());
        for last in 0..10 {
            let err = IinBin::parse(&format!("00028100000{last}")).expect_err("no check digit");
            assert!(err.to_string().contains("no valid check digit"), "{err}");
        }
    }

    #[test]
    fn refuses_wrong_length_letters_and_wrong_check_digit_with_reasons() {
        let cases = [
            ("01112371549", "exactly 12 digits"),
            ("0111237154933", "exactly 12 digits"),
            ("01112371549a", "digits only"),
            ("011123715494", "check digit does not match"),
        ];
        for (text, reason) in cases {
            let err = IinBin::parse(text).expect_err(text);
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn kind_follows_the_fifth_digit() {
        let person = IinBin::with_check_digit(&[9, 0, 0, 1, 0, 1, 3, 0, 0, 0, 0]).expect("ok");
        assert_eq!(person.kind(), IinBinKind::Individual);
        let company = IinBin::with_check_digit(&[0, 5, 0, 1, 4, 0, 0, 0, 1, 2, 3]).expect("ok");
        assert_eq!(company.kind(), IinBinKind::LegalEntity);
    }

    #[test]
    fn borsh_decoding_checks_the_digit() {
        let bin = IinBin::parse("011123715493").expect("valid");
        let mut bytes = borsh::to_vec(&bin).expect("encode");
        assert_eq!(borsh::from_slice::<IinBin>(&bytes).ok(), Some(bin));
        bytes[11] = 4;
        assert!(borsh::from_slice::<IinBin>(&bytes).is_err());
        bytes[11] = 200;
        assert!(borsh::from_slice::<IinBin>(&bytes).is_err());
    }
}
