//! ISO 8601 date-times as ISO 20022 writes them, in Astana time.
//!
//! Kazakhstan has one time zone, fixed UTC+5 since 2024-03-01, so a written
//! time is always `2024-07-24T16:57:31+05:00` (with `.123` milliseconds when
//! they are not zero, so a [`Timestamp`] round-trips exactly). Reading accepts
//! any explicit offset and `Z`; a time without an offset is ambiguous and
//! refused. No time crate is needed for this: the calendar arithmetic is
//! Howard Hinnant's days-from-civil algorithm.

use dtenge_types::Timestamp;

/// Astana's offset from UTC, in seconds.
const ASTANA_OFFSET_S: i64 = 5 * 3600;
const MS_PER_S: i64 = 1000;
const S_PER_DAY: i64 = 86_400;

/// The latest instant whose Astana date still has a four-digit year
/// (9999-12-31T23:59:59.999+05:00).
pub const MAX_TIMESTAMP_MS: u64 = ((days_from_civil(10_000, 1, 1) * S_PER_DAY - ASTANA_OFFSET_S) * MS_PER_S - 1) as u64;

/// Days since 1970-01-01 of a proleptic Gregorian date.
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The first instant of `month` (1–12) of `year` in Astana (a card's
/// expiry month ends there); clamped to the epoch for earlier dates.
pub fn astana_month_start(year: i64, month: i64) -> Timestamp {
    let local_s = days_from_civil(year, month, 1).saturating_mul(S_PER_DAY);
    let ms = local_s.saturating_sub(ASTANA_OFFSET_S).saturating_mul(MS_PER_S);
    Timestamp(u64::try_from(ms).unwrap_or(0))
}

/// Astana local date and time of `at`: (year, month, day, hour, minute, second, millisecond).
fn astana_parts(at: Timestamp) -> (i64, i64, i64, i64, i64, i64, i64) {
    // Clamp so the arithmetic below cannot overflow; callers validate the range.
    let ms = i64::try_from(at.millis().min(MAX_TIMESTAMP_MS)).unwrap_or(i64::MAX);
    let local_s = ms.div_euclid(MS_PER_S) + ASTANA_OFFSET_S;
    let (year, month, day) = civil_from_days(local_s.div_euclid(S_PER_DAY));
    let second_of_day = local_s.rem_euclid(S_PER_DAY);
    (year, month, day, second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60, ms.rem_euclid(MS_PER_S))
}

/// `2024-07-24T16:57:31+05:00`, or `2024-07-24T16:57:31.250+05:00` when the
/// milliseconds are not zero. Instants after [`MAX_TIMESTAMP_MS`] are written
/// as that instant (validation refuses them before anything is written).
pub fn format_astana(at: Timestamp) -> String {
    let (year, month, day, hour, minute, second, ms) = astana_parts(at);
    let fraction = if ms == 0 { String::new() } else { format!(".{ms:03}") };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}+05:00")
}

/// `20240724`: the Astana date, for references.
pub fn astana_date_compact(at: Timestamp) -> String {
    let (year, month, day, ..) = astana_parts(at);
    format!("{year:04}{month:02}{day:02}")
}

/// Parses `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`. Fractions beyond
/// milliseconds are truncated. The error says what is wrong.
pub fn parse_iso_datetime(text: &str) -> Result<Timestamp, String> {
    let bad = |why: &str| format!("{text:?} is not an ISO 8601 date-time with an offset ({why})");
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !text.is_ascii() {
        return Err(bad("expected the form 2024-07-24T16:57:31+05:00"));
    }
    let number = |from: usize, len: usize| -> Result<i64, String> {
        let digits = &text[from..from + len];
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse::<i64>().map_err(|_| bad("bad number"))
        } else {
            Err(bad("expected digits"))
        }
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, sep)| bytes[at] != sep) {
        return Err(bad("expected the form 2024-07-24T16:57:31+05:00"));
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time of day"));
    }
    let mut rest = &text[19..];
    let mut ms = 0;
    if let Some(fraction_and_zone) = rest.strip_prefix('.') {
        let digits = fraction_and_zone.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad("the fraction of a second must have 1 to 9 digits"));
        }
        let fraction = &fraction_and_zone[..digits];
        ms = fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
        rest = &fraction_and_zone[digits..];
    }
    let offset_s = match rest.as_bytes() {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |b: &u8| if b.is_ascii_digit() { Ok(i64::from(b - b'0')) } else { Err(bad("bad offset")) };
            let (hours, minutes) = (digit(h1)? * 10 + digit(h2)?, digit(m1)? * 10 + digit(m2)?);
            if hours > 23 || minutes > 59 {
                return Err(bad("bad offset"));
            }
            let magnitude = hours * 3600 + minutes * 60;
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        [] => return Err(bad("the time zone offset is missing")),
        _ => return Err(bad("expected Z or an offset such as +05:00 at the end")),
    };
    let seconds = days_from_civil(year, month, day) * S_PER_DAY + hour * 3600 + minute * 60 + second - offset_s;
    let millis = seconds * MS_PER_S + ms;
    u64::try_from(millis).map(Timestamp).map_err(|_| bad("before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_astana_time() {
        // 2024-07-24T11:57:31Z
        let at = Timestamp(1_721_822_251_000);
        assert_eq!(format_astana(at), "2024-07-24T16:57:31+05:00");
        assert_eq!(format_astana(Timestamp(1_721_822_251_250)), "2024-07-24T16:57:31.250+05:00");
        assert_eq!(format_astana(Timestamp(0)), "1970-01-01T05:00:00+05:00");
        assert_eq!(astana_date_compact(Timestamp(1_721_822_251_000)), "20240724");
        // 19:00Z is already the next day in Astana.
        assert_eq!(astana_date_compact(Timestamp(1_721_847_600_000)), "20240725");
    }

    #[test]
    fn parses_offsets_and_z() {
        let at = Timestamp(1_721_822_251_000);
        assert_eq!(parse_iso_datetime("2024-07-24T16:57:31+05:00"), Ok(at));
        assert_eq!(parse_iso_datetime("2024-07-24T11:57:31Z"), Ok(at));
        assert_eq!(parse_iso_datetime("2024-07-24T07:57:31-04:00"), Ok(at));
        assert_eq!(parse_iso_datetime("2024-07-24T11:57:31.25Z"), Ok(Timestamp(1_721_822_251_250)));
        assert_eq!(parse_iso_datetime("2024-07-24T11:57:31.123456789Z"), Ok(Timestamp(1_721_822_251_123)));
    }

    #[test]
    fn refuses_bad_date_times_with_a_reason() {
        for (text, why) in [
            ("2024-07-24T16:57:31", "offset is missing"),
            ("2024-02-30T16:57:31Z", "no such date"),
            ("2023-02-29T16:57:31Z", "no such date"),
            ("2024-07-24T24:00:00Z", "no such time"),
            ("2024-07-24 16:57:31Z", "expected the form"),
            ("1969-12-31T23:59:59Z", "before 1970"),
            ("2024-07-24T16:57:31+5:00", "expected Z or an offset"),
            ("2024-07-24T16:57:31.Z", "1 to 9 digits"),
            ("２024-07-24T16:57:31Z", "expected the form"),
        ] {
            let err = parse_iso_datetime(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn format_parses_back_across_the_range() {
        let mut at = 0u64;
        while at < MAX_TIMESTAMP_MS {
            let t = Timestamp(at);
            assert_eq!(parse_iso_datetime(&format_astana(t)), Ok(t), "{at}");
            at = at.saturating_mul(3).saturating_add(86_399_917);
        }
        let last = Timestamp(MAX_TIMESTAMP_MS);
        assert_eq!(format_astana(last), "9999-12-31T23:59:59.999+05:00");
        assert_eq!(parse_iso_datetime(&format_astana(last)), Ok(last));
    }
}
