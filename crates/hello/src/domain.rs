//! The birthday domain: validated usernames and dates of birth, and the greeting rule as a pure
//! function of the date of birth and today's date.

use time::{Date, Month};

/// Why a username or date was refused. Each case maps to a 4xx problem in `error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The username is empty, too long or has a character other than an ASCII letter.
    #[error("username must be 1 to {max} ASCII letters (a-z, A-Z); {reason}", max = Username::MAX_LEN)]
    Username {
        /// What exactly is wrong.
        reason: String,
    },
    /// The date is not a `YYYY-MM-DD` calendar date.
    #[error("dateOfBirth must be a calendar date written YYYY-MM-DD; got `{0}`")]
    DateFormat(String),
    /// The date is today or later.
    #[error("dateOfBirth must be before today ({today}); got {date}")]
    DateNotInPast {
        /// The date sent.
        date: Date,
        /// Today, UTC.
        today: Date,
    },
}

/// A username: 1 to 64 ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// The longest accepted username.
    pub const MAX_LEN: usize = 64;

    /// Parses a raw path segment.
    pub fn parse(raw: &str) -> Result<Username, ValidationError> {
        let reason = if raw.is_empty() {
            Some("it is empty".to_owned())
        } else if raw.len() > Self::MAX_LEN {
            Some(format!("it has {} characters", raw.chars().count()))
        } else {
            raw.chars()
                .find(|c| !c.is_ascii_alphabetic())
                .map(|c| format!("`{}` is not a letter", c.escape_default()))
        };
        match reason {
            Some(reason) => Err(ValidationError::Username { reason }),
            None => Ok(Username(raw.to_owned())),
        }
    }

    /// The username as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date of birth: a calendar date strictly before today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth(Date);

impl DateOfBirth {
    /// Parses `YYYY-MM-DD` and checks it is before `today`.
    pub fn parse(raw: &str, today: Date) -> Result<DateOfBirth, ValidationError> {
        let date = Self::parse_stored(raw)?.0;
        if date >= today {
            return Err(ValidationError::DateNotInPast { date, today });
        }
        Ok(DateOfBirth(date))
    }

    /// Parses a date as stored; no check against today (it was checked when saved).
    pub fn parse_stored(raw: &str) -> Result<DateOfBirth, ValidationError> {
        parse_iso(raw.as_bytes())
            .map(DateOfBirth)
            .ok_or_else(|| ValidationError::DateFormat(raw.chars().take(40).collect()))
    }

    /// The date.
    pub fn date(self) -> Date {
        self.0
    }

    /// `YYYY-MM-DD`, as stored.
    pub fn to_iso(self) -> String {
        String::from_utf8_lossy(&self.iso_bytes()).into_owned()
    }

    /// `YYYY-MM-DD` without an allocation, for the store.
    pub fn iso_bytes(self) -> [u8; 10] {
        let (year, month, day) = (self.0.year(), u8::from(self.0.month()), self.0.day());
        // Only dates parsed from four digits exist, so the year is 0 to 9999.
        let year = u16::try_from(year).unwrap_or(0);
        let digit = |value: u16, place: u16| b'0' + (value / place % 10) as u8;
        [
            digit(year, 1000),
            digit(year, 100),
            digit(year, 10),
            digit(year, 1),
            b'-',
            digit(u16::from(month), 10),
            digit(u16::from(month), 1),
            b'-',
            digit(u16::from(day), 10),
            digit(u16::from(day), 1),
        ]
    }
}

/// Exactly `YYYY-MM-DD` in ASCII digits, a real calendar date. By hand rather than with
/// `time`'s format parser, which also takes a sign and more than four year digits (not what
/// the API promises) and cost ten times as much on every `GET` and `PUT`.
fn parse_iso(raw: &[u8]) -> Option<Date> {
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *raw else {
        return None;
    };
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u16, |value, digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u16::from(digit - b'0'))
        })
    };
    let year = number(&[y1, y2, y3, y4])?;
    let month = Month::try_from(u8::try_from(number(&[m1, m2])?).ok()?).ok()?;
    let day = u8::try_from(number(&[d1, d2])?).ok()?;
    Date::from_calendar_date(i32::from(year), month, day).ok()
}

/// The birthday in `year`. A 29 February birthday falls on 28 February in non-leap years.
fn anniversary(birth: Date, year: i32) -> Option<Date> {
    let day =
        if birth.month() == Month::February && birth.day() == 29 && !time::util::is_leap_year(year)
        {
            28
        } else {
            birth.day()
        };
    Date::from_calendar_date(year, birth.month(), day).ok()
}

/// Days from `today` to the next birthday: 0 when it is today.
pub fn days_until_birthday(birth: DateOfBirth, today: Date) -> i64 {
    let this_year = anniversary(birth.0, today.year());
    let next = match this_year {
        Some(date) if date >= today => Some(date),
        _ => anniversary(birth.0, today.year() + 1),
    };
    next.map_or(0, |date| (date - today).whole_days())
}

/// The greeting `GET /hello/<username>` answers.
pub fn greeting(username: &Username, birth: DateOfBirth, today: Date) -> Greeting<'_> {
    Greeting {
        username,
        days: days_until_birthday(birth, today),
    }
}

/// The greeting's text, written where it is wanted (straight into the JSON answer, escaped on
/// the way) rather than built as a `String` first.
#[derive(Debug, Clone, Copy)]
pub struct Greeting<'a> {
    username: &'a Username,
    days: i64,
}

impl std::fmt::Display for Greeting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let username = self.username.as_str();
        match self.days {
            0 => write!(f, "Hello, {username}! Happy birthday!"),
            1 => write!(f, "Hello, {username}! Your birthday is in 1 day"),
            n => write!(f, "Hello, {username}! Your birthday is in {n} days"),
        }
    }
}

impl serde::Serialize for Greeting<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn birth(raw: &str) -> DateOfBirth {
        DateOfBirth::parse_stored(raw).unwrap()
    }

    #[test]
    fn usernames_are_one_to_sixty_four_ascii_letters() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("AbC").is_ok());
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "bob1",
            "a b",
            "jöhn",
            "al-ice",
            "ali_ce",
            &"a".repeat(65),
            "名前",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn dates_must_be_real_calendar_dates_in_yyyy_mm_dd() {
        let today = date!(2024 - 06 - 15);
        assert!(DateOfBirth::parse("2000-02-29", today).is_ok());
        for bad in [
            "2021-02-30",
            "2021-13-01",
            "2021-00-10",
            "2021-1-05",
            "21-01-05",
            "+2021-01-05",
            "2021/01/05",
            "",
            "yesterday",
            "2021-01-05T00:00:00Z",
            "2021-01-5 ",
            "2021-1a-05",
            "2021--1-05",
            "２０２１-01-05",
        ] {
            assert!(
                matches!(
                    DateOfBirth::parse(bad, today),
                    Err(ValidationError::DateFormat(_))
                ),
                "{bad:?} must be refused as a format error"
            );
        }
    }

    #[test]
    fn stored_dates_read_back_as_written() {
        for raw in [
            "0001-01-01",
            "0999-12-31",
            "1990-05-17",
            "2000-02-29",
            "9999-12-31",
        ] {
            let birth = DateOfBirth::parse_stored(raw).unwrap();
            assert_eq!(birth.to_iso(), raw);
            assert_eq!(&birth.iso_bytes(), raw.as_bytes());
        }
        assert_eq!(birth("1990-05-17").date(), date!(1990 - 05 - 17));
    }

    #[test]
    fn dates_must_be_before_today() {
        let today = date!(2024 - 06 - 15);
        assert!(DateOfBirth::parse("2024-06-14", today).is_ok());
        assert!(matches!(
            DateOfBirth::parse("2024-06-15", today),
            Err(ValidationError::DateNotInPast { .. })
        ));
        assert!(matches!(
            DateOfBirth::parse("2030-01-01", today),
            Err(ValidationError::DateNotInPast { .. })
        ));
    }

    #[test]
    fn days_until_birthday_counts_to_the_next_anniversary() {
        let check = |birth_raw: &str, today: Date, expected: i64| {
            assert_eq!(
                days_until_birthday(birth(birth_raw), today),
                expected,
                "born {birth_raw}, today {today}"
            );
        };
        check("1990-06-16", date!(2024 - 06 - 15), 1);
        check("1990-06-15", date!(2024 - 06 - 15), 0);
        // The day after a birthday: a whole year minus one day away, 365 across a leap day.
        check("1990-06-14", date!(2023 - 06 - 15), 365);
        check("1990-06-14", date!(2024 - 06 - 15), 364);
        check("1990-01-01", date!(2023 - 01 - 02), 364);
        check("1990-01-01", date!(2024 - 01 - 02), 365);
        check("1990-12-31", date!(2024 - 01 - 01), 365);
    }

    #[test]
    fn a_leap_day_birthday_is_on_the_twenty_eighth_in_other_years() {
        check_leap(date!(2024 - 02 - 29), 0);
        check_leap(date!(2023 - 02 - 28), 0);
        check_leap(date!(2023 - 02 - 27), 1);
        check_leap(date!(2023 - 03 - 01), 365); // next: 2024-02-29
        check_leap(date!(2024 - 02 - 28), 1);
        check_leap(date!(2025 - 03 - 01), 364); // next: 2026-02-28
        fn check_leap(today: Date, expected: i64) {
            assert_eq!(
                days_until_birthday(birth("2000-02-29"), today),
                expected,
                "today {today}"
            );
        }
    }

    #[test]
    fn greetings_follow_the_api_text() {
        let alice = Username::parse("alice").unwrap();
        let today = date!(2024 - 06 - 15);
        assert_eq!(
            greeting(&alice, birth("1990-06-15"), today).to_string(),
            "Hello, alice! Happy birthday!"
        );
        assert_eq!(
            greeting(&alice, birth("1990-06-16"), today).to_string(),
            "Hello, alice! Your birthday is in 1 day"
        );
        assert_eq!(
            greeting(&alice, birth("1990-06-20"), today).to_string(),
            "Hello, alice! Your birthday is in 5 days"
        );
    }
}
