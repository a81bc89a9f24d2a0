//! The chat's domain: validated room and display names, and the text of a message.

/// Why a name or a message was refused. Each maps to an error frame (or a 400 page) naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not a room name.
    #[error("a room name is 1 to {max} of a-z, 0-9, `-` and `_`; got `{0}`", max = RoomName::MAX_LEN)]
    Room(String),
    /// Not a display name.
    #[error("a display name is 1 to {max} printable characters after trimming", max = DisplayName::MAX_CHARS)]
    Name,
    /// Nothing left to send.
    #[error("the message is empty once control characters are removed")]
    EmptyMessage,
}

/// A room: 1 to 64 of `a-z`, `0-9`, `-`, `_` (lowercased), so it is safe in a URL path, a broker
/// topic and a log stream name as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

impl RoomName {
    /// The longest room name.
    pub const MAX_LEN: usize = 64;

    /// Parses a room name, lowercasing ASCII letters.
    ///
    /// ```
    /// use chat::domain::RoomName;
    /// assert_eq!(RoomName::parse(" Rust-Users ").unwrap().as_str(), "rust-users");
    /// assert!(RoomName::parse("../etc").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<RoomName, ValidationError> {
        let name = raw.trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(RoomName(name))
        } else {
            Err(ValidationError::Room(raw.chars().take(80).collect()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 32 printable characters, trimmed, inner whitespace runs collapsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest display name, in characters.
    pub const MAX_CHARS: usize = 32;

    /// Parses what a client asked to be called.
    ///
    /// ```
    /// use chat::domain::DisplayName;
    /// assert_eq!(DisplayName::parse("  Ada \t Lovelace ").unwrap().as_str(), "Ada Lovelace");
    /// assert!(DisplayName::parse("\u{7}\u{200b}").is_err());
    /// assert!(DisplayName::parse(&"x".repeat(33)).is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<DisplayName, ValidationError> {
        let name = raw
            .split(|c: char| c.is_whitespace() || is_invisible(c))
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let count = name.chars().count();
        if count == 0 || count > Self::MAX_CHARS || name.chars().any(is_invisible) {
            return Err(ValidationError::Name);
        }
        Ok(DisplayName(name))
    }

    /// This name, or the first of `name (2)`, `name (3)`, … that `taken` does not hold, cut so
    /// it stays within 32 characters.
    ///
    /// ```
    /// use chat::domain::DisplayName;
    /// let ada = DisplayName::parse("ada").unwrap();
    /// let taken = |name: &DisplayName| name.as_str() == "ada" || name.as_str() == "ada (2)";
    /// assert_eq!(ada.unique(taken).as_str(), "ada (3)");
    /// ```
    pub fn unique(&self, taken: impl Fn(&DisplayName) -> bool) -> DisplayName {
        if !taken(self) {
            return self.clone();
        }
        (2u32..)
            .map(|n| {
                let suffix = format!(" ({n})");
                let keep = Self::MAX_CHARS.saturating_sub(suffix.chars().count());
                let stem: String = self.0.chars().take(keep).collect();
                DisplayName(format!("{}{suffix}", stem.trim_end()))
            })
            .find(|candidate| !taken(candidate))
            .unwrap_or_else(|| self.clone())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Control and format characters (zero-width spaces, direction overrides) print nothing or
/// rearrange what follows; no name may be made of them, and no message carries them.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// A message's text with control characters removed (newlines and tabs kept), or an error
/// when nothing printable is left. Length limits are checked on the raw frame, before this.
///
/// ```
/// assert_eq!(chat::domain::clean_text("hi\u{0}\u{7} there\n").unwrap(), "hi there\n");
/// assert!(chat::domain::clean_text("\u{1}\u{2}").is_err());
/// ```
pub fn clean_text(raw: &str) -> Result<String, ValidationError> {
    let text: String = raw
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !is_invisible(c))
        .collect();
    if text.trim().is_empty() {
        Err(ValidationError::EmptyMessage)
    } else {
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_url_and_topic_safe() {
        for good in ["lobby", "a", "rust-users_2", &"a".repeat(64), "LOBBY"] {
            assert!(RoomName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", " ", "a b", "a/b", "a.b", "ü", &"a".repeat(65), "a\u{0}"] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names_count_characters_not_bytes() {
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
        assert!(DisplayName::parse("日本語の名前").is_ok());
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse("   ").is_err());
        assert!(
            DisplayName::parse("a\u{202e}b").is_ok(),
            "the override is dropped, not the name"
        );
        assert_eq!(DisplayName::parse("a\u{202e}b").unwrap().as_str(), "a b");
    }

    #[test]
    fn unique_names_stay_within_the_limit() {
        let long = DisplayName::parse(&"x".repeat(32)).unwrap();
        let unique = long.unique(|name| name == &long);
        assert_eq!(unique.as_str().chars().count(), 32);
        assert!(unique.as_str().ends_with(" (2)"));
    }
}
