//! Money: an amount of tiyn (1 DT = 100 tiyn) in a `u64`.
//!
//! Arithmetic is checked only: there is no `+` on `Amount`, so an overflow can
//! never wrap silently. Text form follows Kazakh/Russian practice: groups of
//! three digits separated by a space and a decimal comma, `4 000,00`.
//! Parsing also accepts a decimal point, no grouping, non-breaking spaces and
//! whole numbers (`4000`, `4000.5`, `4 000,00`) but never more than two
//! decimals, signs, or anything else.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::TypesError;

/// Tiyn per digital tenge.
pub const TIYN_PER_TENGE: u64 = 100;

/// An amount in tiyn. Serialised in JSON as an integer number of tiyn.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// Zero tiyn.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount.
    pub const MAX: Amount = Amount(u64::MAX);

    /// An amount of `tiyn`.
    pub const fn from_tiyn(tiyn: u64) -> Amount {
        Amount(tiyn)
    }

    /// Whole tenge, checked: `None` if it would overflow.
    pub const fn from_tenge(tenge: u64) -> Option<Amount> {
        match tenge.checked_mul(TIYN_PER_TENGE) {
            Some(tiyn) => Some(Amount(tiyn)),
            None => None,
        }
    }

    /// The number of tiyn.
    pub const fn tiyn(self) -> u64 {
        self.0
    }

    /// True for zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Amount) -> Option<Amount> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }

    /// `self - other`, or `None` if `other` is larger.
    pub const fn checked_sub(self, other: Amount) -> Option<Amount> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }

    /// `self - other`, or zero if `other` is larger.
    pub const fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// Sum of amounts, or `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(items: I) -> Option<Amount> {
        items.into_iter().try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
    }

    /// Plain machine form: `4000.00`.
    pub fn to_plain(self) -> String {
        format!("{}.{:02}", self.0 / TIYN_PER_TENGE, self.0 % TIYN_PER_TENGE)
    }
}

impl fmt::Display for Amount {
    /// `4 000,00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = (self.0 / TIYN_PER_TENGE).to_string();
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, ch) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(' ');
            }
            grouped.push(ch);
        }
        write!(f, "{},{:02}", grouped, self.0 % TIYN_PER_TENGE)
    }
}

impl FromStr for Amount {
    type Err = TypesError;

    fn from_str(text: &str) -> Result<Amount, TypesError> {
        let bad = |reason: &'static str| TypesError::Amount { input: text.chars().take(40).collect(), reason };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad("empty"));
        }
        let mut whole: u64 = 0;
        let mut fraction: u64 = 0;
        let mut fraction_digits = 0u32;
        let mut seen_separator = false;
        let mut seen_digit = false;
        for ch in trimmed.chars() {
            match ch {
                '0'..='9' => {
                    let digit = u64::from(ch as u8 - b'0');
                    seen_digit = true;
                    if seen_separator {
                        fraction_digits += 1;
                        if fraction_digits > 2 {
                            return Err(bad("more than two decimals (amounts are in tiyn)"));
                        }
                        fraction = fraction * 10 + digit;
                    } else {
                        whole =
                            whole.checked_mul(10).and_then(|w| w.checked_add(digit)).ok_or_else(|| bad("too large"))?;
                    }
                }
                ' ' | '\u{a0}' | '\u{202f}' if !seen_separator => {}
                ',' | '.' if !seen_separator && seen_digit => seen_separator = true,
                '-' => return Err(bad("negative amounts are not allowed")),
                _ => return Err(bad("expected digits, spaces and one decimal comma")),
            }
        }
        if !seen_digit {
            return Err(bad("no digits"));
        }
        if fraction_digits == 1 {
            fraction *= 10;
        }
        whole
            .checked_mul(TIYN_PER_TENGE)
            .and_then(|w| w.checked_add(fraction))
            .map(Amount)
            .ok_or_else(|| bad("too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_grouping_and_decimal_comma() {
        assert_eq!(Amount::from_tiyn(400_000).to_string(), "4 000,00");
        assert_eq!(Amount::from_tiyn(5).to_string(), "0,05");
        assert_eq!(Amount::from_tiyn(123_456_789).to_string(), "1 234 567,89");
        assert_eq!(Amount::from_tiyn(100_000_000).to_string(), "1 000 000,00");
        assert_eq!(Amount::MAX.to_string(), "184 467 440 737 095 516,15");
    }

    #[test]
    fn parses_the_forms_people_type() {
        let cases = [
            ("4 000,00", 400_000),
            ("4000", 400_000),
            ("4000.5", 400_050),
            ("4\u{a0}000,05", 400_005),
            ("0,01", 1),
            (" 150 ", 15_000),
        ];
        for (text, tiyn) in cases {
            assert_eq!(text.parse::<Amount>().ok(), Some(Amount::from_tiyn(tiyn)), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_amounts_with_a_reason() {
        for text in ["", "-5", "1,234", "1.2.3", "abc", ",5", "1e5", "184467440737095516,16"] {
            let err = text.parse::<Amount>().expect_err(text);
            assert!(err.to_string().contains("amount"), "{err}");
        }
    }

    #[test]
    fn display_parses_back() {
        for tiyn in [0, 1, 99, 100, 123_456_789, u64::MAX] {
            let a = Amount::from_tiyn(tiyn);
            assert_eq!(a.to_string().parse::<Amount>().ok(), Some(a));
        }
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Amount::MAX.checked_add(Amount::from_tiyn(1)), None);
        assert_eq!(Amount::ZERO.checked_sub(Amount::from_tiyn(1)), None);
        assert_eq!(Amount::checked_sum([Amount::from_tiyn(1), Amount::from_tiyn(2)]), Some(Amount::from_tiyn(3)));
        assert_eq!(Amount::checked_sum([Amount::MAX, Amount::from_tiyn(1)]), None);
    }
}
