//! notes' rules as plain functions and types: field validation with Notejam's messages, the
//! order of note lists, "Last modified" as people read it, and which `next` is safe to follow.

use time::OffsetDateTime;

/// Longest pad or note name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes (argon2 accepts more; nobody needs it).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A field's error, as the form shows it under the field.
pub type FieldError = &'static str;

/// An email address as notes stores and looks it up: trimmed, lowercased and in Unicode NFC, so
/// `éve@…` typed precomposed or as `e` + combining accent is one account, and uniqueness is
/// case-insensitive on what is stored. The whole address is lowercased, not only the domain:
/// no mail provider people use tells `Ann@` from `ann@`, and two accounts that differ only in
/// case would be a trap.
///
/// ```
/// use notes::domain::normalize_email;
/// assert_eq!(normalize_email(" Ann@Example.COM "), "ann@example.com");
/// assert_eq!(normalize_email("E\u{301}ve@example.com"), normalize_email("\u{c9}ve@example.com"));
/// ```
pub fn normalize_email(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    // Lowercasing can leave a string that is not NFC (a few letters lowercase to a base plus a
    // combining mark), so compose after it.
    raw.trim().to_lowercase().nfc().collect()
}

/// A new account's email address, [normalised](normalize_email): one `@` between a non-empty
/// local part and a domain with a dot, no spaces, at most 254 bytes.
///
/// ```
/// assert_eq!(notes::domain::parse_email(" Ann@Example.COM "), Ok("ann@example.com".to_owned()));
/// assert_eq!(notes::domain::parse_email(""), Err("Email is required"));
/// assert_eq!(notes::domain::parse_email("ann@localhost"), Err("Invalid email"));
/// ```
pub fn parse_email(raw: &str) -> Result<String, FieldError> {
    let email = normalize_email(raw);
    if email.is_empty() {
        return Err("Email is required");
    }
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err("Invalid email")
    }
}

/// A new password: present, 8 characters or more, at most 1 KiB.
pub fn check_new_password(password: &str) -> Result<(), FieldError> {
    if password.is_empty() {
        Err("Password is required")
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Err("Password must be at least 8 characters")
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err("Password is too long")
    } else {
        Ok(())
    }
}

/// The confirmation of a new password.
pub fn check_confirmation(password: &str, confirmation: &str) -> Result<(), FieldError> {
    if password == confirmation {
        Ok(())
    } else {
        Err("Passwords do not match")
    }
}

/// A pad or note name: trimmed, present, at most [`MAX_NAME_CHARS`].
pub fn parse_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        Err("Name is required")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err("Name is too long (at most 100 characters)")
    } else {
        Ok(name.to_owned())
    }
}

/// A note's text: present (not only whitespace), kept as written.
pub fn parse_text(raw: &str) -> Result<String, FieldError> {
    if raw.trim().is_empty() {
        Err("Text is required")
    } else {
        Ok(raw.to_owned())
    }
}

/// The order of a note list, from `?order=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// `name`
    NameAsc,
    /// `-name`
    NameDesc,
    /// `updated_at`
    UpdatedAsc,
    /// `-updated_at`, the default.
    #[default]
    UpdatedDesc,
}

impl Order {
    /// Every order, in [`Order::index`] order.
    pub const ALL: [Order; 4] = [
        Order::NameAsc,
        Order::NameDesc,
        Order::UpdatedAsc,
        Order::UpdatedDesc,
    ];

    /// The order `?order=` names; anything else is the default.
    ///
    /// ```
    /// use notes::domain::Order;
    /// assert_eq!(Order::parse(Some("-name")), Order::NameDesc);
    /// assert_eq!(Order::parse(Some("DROP TABLE")), Order::UpdatedDesc);
    /// assert_eq!(Order::parse(None), Order::UpdatedDesc);
    /// ```
    pub fn parse(raw: Option<&str>) -> Order {
        match raw {
            Some("name") => Order::NameAsc,
            Some("-name") => Order::NameDesc,
            Some("updated_at") => Order::UpdatedAsc,
            _ => Order::UpdatedDesc,
        }
    }

    /// Its position in [`Order::ALL`].
    pub fn index(self) -> usize {
        match self {
            Order::NameAsc => 0,
            Order::NameDesc => 1,
            Order::UpdatedAsc => 2,
            Order::UpdatedDesc => 3,
        }
    }

    /// How `?order=` spells it.
    pub fn as_query(self) -> &'static str {
        match self {
            Order::NameAsc => "name",
            Order::NameDesc => "-name",
            Order::UpdatedAsc => "updated_at",
            Order::UpdatedDesc => "-updated_at",
        }
    }

    /// The `ORDER BY` clause over `notes_notes n`; ties go by id in the same direction, so the
    /// order is total.
    pub fn sql(self) -> &'static str {
        match self {
            Order::NameAsc => "n.name ASC, n.id ASC",
            Order::NameDesc => "n.name DESC, n.id DESC",
            Order::UpdatedAsc => "n.updated_at ASC, n.id ASC",
            Order::UpdatedDesc => "n.updated_at DESC, n.id DESC",
        }
    }
}

/// A pad's or note's id as a path spells it: a positive decimal integer, digits only. Anything
/// else names nothing, so the pages and the API answer `404` for it, never `400`.
///
/// ```
/// use notes::domain::parse_id;
/// assert_eq!(parse_id("42"), Some(42));
/// for bad in ["0", "-1", "+1", " 1", "1.0", "99999999999999999999", ""] {
///     assert_eq!(parse_id(bad), None, "{bad}");
/// }
/// ```
pub fn parse_id(raw: &str) -> Option<i64> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Some(id),
        _ => None,
    }
}

/// Microseconds since the Unix epoch, the unit stored times are in.
pub fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// "Last modified" of a time stored as microseconds, seen at `now` (UTC calendar days):
/// `Today`, `Yesterday`, `N days ago` up to a week, then the date.
///
/// ```
/// use time::macros::datetime;
/// use notes::domain::{last_modified, micros};
/// let now = datetime!(2026-11-23 08:00 UTC);
/// assert_eq!(last_modified(micros(datetime!(2026-11-23 00:01 UTC)), now), "Today");
/// assert_eq!(last_modified(micros(datetime!(2026-11-22 23:59 UTC)), now), "Yesterday");
/// assert_eq!(last_modified(micros(datetime!(2026-11-18 12:00 UTC)), now), "5 days ago");
/// assert_eq!(last_modified(micros(datetime!(2026-10-01 12:00 UTC)), now), "2026-10-01");
/// ```
pub fn last_modified(at_micros: i64, now: OffsetDateTime) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let days = (now.date() - at.date()).whole_days();
    match days {
        i64::MIN..=0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        2..=7 => format!("{days} days ago"),
        _ => at.date().to_string(),
    }
}

/// Where to go after signing in: `next` when it is a path on this site, else `/`. Refuses
/// anything a browser could read as another origin (`//evil.com`, `/\evil.com`, `https:…`).
///
/// ```
/// use notes::domain::safe_next;
/// assert_eq!(safe_next(Some("/notes/3/?x=1")), "/notes/3/?x=1");
/// for evil in ["//evil.com", "https://evil.com", "/\\evil.com", "evil.com", "/\t/evil.com"] {
///     assert_eq!(safe_next(Some(evil)), "/", "{evil}");
/// }
/// ```
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert_eq!(parse_email(bad), Err("Invalid email"), "{bad}");
        }
        assert_eq!(parse_email("   "), Err("Email is required"));
    }

    #[test]
    fn an_email_typed_composed_or_decomposed_or_in_capitals_is_one_address() {
        let composed = parse_email("\u{e9}ve@example.com");
        assert_eq!(composed, Ok("\u{e9}ve@example.com".to_owned()));
        assert_eq!(parse_email("e\u{301}ve@example.com"), composed);
        assert_eq!(parse_email("E\u{301}VE@EXAMPLE.COM"), composed);
        assert_eq!(parse_email(" \u{c9}ve@Example.com "), composed);
    }

    #[test]
    fn names_are_trimmed_required_and_bounded() {
        assert_eq!(parse_name("  pad  "), Ok("pad".to_owned()));
        assert_eq!(parse_name(" \t "), Err("Name is required"));
        assert!(parse_name(&"x".repeat(101)).is_err());
        assert!(parse_name(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn passwords_are_required_long_enough_and_confirmed() {
        assert_eq!(check_new_password(""), Err("Password is required"));
        assert!(check_new_password("short").is_err());
        assert_eq!(check_new_password("long enough"), Ok(()));
        assert_eq!(check_confirmation("a", "b"), Err("Passwords do not match"));
    }

    #[test]
    fn every_order_round_trips_through_its_query_spelling() {
        for order in Order::ALL {
            assert_eq!(Order::parse(Some(order.as_query())), order);
            assert_eq!(Order::ALL[order.index()], order);
        }
    }
}
