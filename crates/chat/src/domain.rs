//! The chat's domain: validated room and display names, how a name looks, and the text of a
//! message.

use unicode_normalization::UnicodeNormalization;

/// Why a name or a message was refused. Each maps to an error frame (or a 400 page) naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not a room name.
    #[error("a room name is 1 to {max} of a-z, 0-9, `-` and `_`; got `{0}`", max = RoomName::MAX_LEN)]
    Room(String),
    /// Not a display name.
    #[error("a display name is 1 to {max} visible characters after trimming", max = DisplayName::MAX_CHARS)]
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

/// A display name: 1 to 32 characters in NFC, with no invisible character (see
/// [`is_default_ignorable`]), trimmed, inner whitespace runs collapsed to one space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest display name, in characters.
    pub const MAX_CHARS: usize = 32;

    /// Parses what a client asked to be called: invisible characters are removed (a name
    /// shows as what is left), the rest is normalised to NFC (so a composed and a decomposed
    /// `é` are one name), then controls and whitespace runs become single spaces and the ends
    /// are trimmed.
    ///
    /// ```
    /// use chat::domain::DisplayName;
    /// assert_eq!(DisplayName::parse("  Ada \t Lovelace ").unwrap().as_str(), "Ada Lovelace");
    /// assert_eq!(DisplayName::parse("\u{2066}Ade\u{301}le").unwrap().as_str(), "Ad\u{e9}le");
    /// assert!(DisplayName::parse("\u{7}\u{200b}").is_err());
    /// assert!(DisplayName::parse(&"x".repeat(33)).is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<DisplayName, ValidationError> {
        // Removed before normalising: an ignorable character between a letter and its accent
        // (U+034F) would otherwise keep them from composing.
        let visible: String = raw
            .chars()
            .filter(|&c| !is_default_ignorable(c))
            .nfc()
            .collect();
        let name = visible
            .split(|c: char| is_blank(c) || c.is_control())
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let count = name.chars().count();
        if count == 0 || count > Self::MAX_CHARS || name.chars().any(is_invisible) {
            return Err(ValidationError::Name);
        }
        Ok(DisplayName(name))
    }

    /// This name, or the first of `name (2)`, `name (3)`, … whose [`Likeness`] `taken` does
    /// not hold, cut so it stays within 32 characters. `taken` says whether a name that looks
    /// like the one given is in use: two names are told apart by how they look, not by their
    /// code points.
    ///
    /// ```
    /// use chat::domain::{DisplayName, Likeness};
    /// let members = [Likeness::of("ada"), Likeness::of("ada (2)")];
    /// let taken = |name: &Likeness| members.iter().any(|member| member.resembles(name));
    /// assert_eq!(DisplayName::parse("Ada").unwrap().unique(taken).as_str(), "Ada (3)");
    /// ```
    pub fn unique(&self, taken: impl Fn(&Likeness) -> bool) -> DisplayName {
        if !taken(&self.likeness()) {
            return self.clone();
        }
        (2u32..)
            .map(|n| {
                let suffix = format!(" ({n})");
                let keep = Self::MAX_CHARS.saturating_sub(suffix.chars().count());
                let stem: String = self.0.chars().take(keep).collect();
                DisplayName(format!("{}{suffix}", stem.trim_end()))
            })
            .find(|candidate| !taken(&candidate.likeness()))
            .unwrap_or_else(|| self.clone())
    }

    /// How the name looks.
    pub fn likeness(&self) -> Likeness {
        Likeness::of(&self.0)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a display name looks to a reader, to tell apart only names a reader can tell apart:
/// the UTS #39 skeleton of the name (`paypal` with a Cyrillic `а` is `paypal`, `I` is `l`),
/// and the skeleton of the name lowercased, because readers take `Xena` and `xena` for the
/// same person (and a sans-serif `Il` for `ll`, which the skeleton of the lowercase alone
/// would miss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Likeness {
    skeleton: String,
    lowercase_skeleton: String,
}

impl Likeness {
    /// The likeness of a name as it is shown (another replica's member list holds names its
    /// own [`DisplayName::parse`] made).
    pub fn of(name: &str) -> Likeness {
        Likeness {
            skeleton: unicode_security::skeleton(name).collect(),
            lowercase_skeleton: unicode_security::skeleton(&name.to_lowercase()).collect(),
        }
    }

    /// Whether a reader could take one name for the other.
    ///
    /// ```
    /// use chat::domain::Likeness;
    /// assert!(Likeness::of("paypal").resembles(&Likeness::of("p\u{430}ypal")));
    /// assert!(Likeness::of("Xena").resembles(&Likeness::of("xena")));
    /// assert!(!Likeness::of("ada").resembles(&Likeness::of("bob")));
    /// ```
    pub fn resembles(&self, other: &Likeness) -> bool {
        self.skeleton == other.skeleton || self.lowercase_skeleton == other.lowercase_skeleton
    }
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt; the same since Unicode
/// 14, and the set `unicode_security::skeleton` drops, which a test checks): characters a
/// renderer shows as nothing unless it supports them, such as the soft hyphen, zero-width
/// spaces and joiners, direction marks, embeddings, overrides and isolates, variation
/// selectors, the Hangul fillers and tag characters.
pub fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// What no name and no message carries: controls (except where a message keeps newlines and
/// tabs) and default-ignorable characters, which print nothing or rearrange what follows.
fn is_invisible(c: char) -> bool {
    c.is_control() || is_default_ignorable(c)
}

/// What separates the words of a name: whitespace, and the blank Braille pattern, which is
/// not whitespace to Unicode but shows as a space.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{2800}'
}

/// A message's text without invisible characters: no controls, and no default-ignorable
/// characters, so no direction override or isolate can rearrange what a reader sees. Kept:
/// newlines and tabs, and the joiners and variation selectors that writing needs (U+200C and
/// U+200D shape Persian and Indic words and join emoji; U+FE00–U+FE0F pick a glyph's style,
/// as in ❤️), which hide nothing. Names lose those too. An error when nothing printable is
/// left. Length limits are checked on the raw frame, before this.
///
/// ```
/// assert_eq!(chat::domain::clean_text("hi\u{0}\u{7} there\n").unwrap(), "hi there\n");
/// assert_eq!(chat::domain::clean_text("\u{2067}abc\u{2069}").unwrap(), "abc");
/// assert!(chat::domain::clean_text("\u{1}\u{2}").is_err());
/// ```
pub fn clean_text(raw: &str) -> Result<String, ValidationError> {
    let text: String = raw
        .chars()
        .filter(|&c| keeps_in_text(c) || !is_invisible(c))
        .collect();
    if text.chars().all(|c| c.is_whitespace() || keeps_in_text(c)) {
        Err(ValidationError::EmptyMessage)
    } else {
        Ok(text)
    }
}

fn keeps_in_text(c: char) -> bool {
    matches!(
        c,
        '\n' | '\t' | '\u{200c}' | '\u{200d}' | '\u{fe00}'..='\u{fe0f}'
    )
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
        assert_eq!(
            DisplayName::parse("a\u{202e}b").unwrap().as_str(),
            "ab",
            "the override is dropped, not the name"
        );
        assert!(
            DisplayName::parse(&"e\u{301}".repeat(32)).is_ok(),
            "32 once composed"
        );
    }

    /// The name `raw` parses to, or `None` when it is refused.
    fn parsed(raw: &str) -> Option<String> {
        DisplayName::parse(raw)
            .ok()
            .map(|name| name.as_str().to_owned())
    }

    #[test]
    fn composed_and_decomposed_names_are_one_name_in_nfc() {
        let composed = "Ad\u{e9}le";
        assert_eq!(parsed("Ade\u{301}le").as_deref(), Some(composed));
        assert_eq!(parsed(composed).as_deref(), Some(composed));
        assert_eq!(
            parsed("Ade\u{34f}\u{301}le").as_deref(),
            Some(composed),
            "a grapheme joiner does not keep the accent from composing"
        );
    }

    #[test]
    fn isolates_soft_hyphens_and_hangul_fillers_vanish_from_names() {
        let invisible = [
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{ad}',
            '\u{115f}',
            '\u{1160}',
            '\u{3164}',
            '\u{ffa0}',
            '\u{200d}',
            '\u{fe0f}',
            '\u{e0041}',
        ];
        for c in invisible {
            let code = c as u32;
            assert_eq!(
                parsed(&format!("{c}xena")).as_deref(),
                Some("xena"),
                "U+{code:04X} in front"
            );
            assert_eq!(
                parsed(&format!("xe{c}na{c}")).as_deref(),
                Some("xena"),
                "U+{code:04X} inside"
            );
            assert_eq!(parsed(&format!("{c}{c} {c}")), None, "U+{code:04X} alone");
        }
        assert_eq!(
            parsed("xena\u{2800}").as_deref(),
            Some("xena"),
            "a blank Braille pattern"
        );
    }

    #[test]
    fn default_ignorables_are_unicodes_as_unicode_security_has_them() {
        // unicode_security::skeleton drops exactly the Default_Ignorable_Code_Points (its
        // confusables table maps no character to nothing), from its own Unicode tables.
        let mut buffer = [0u8; 4];
        let mismatches: Vec<String> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|&c| {
                let dropped = unicode_security::skeleton(c.encode_utf8(&mut buffer))
                    .next()
                    .is_none();
                dropped != is_default_ignorable(c)
            })
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        assert!(mismatches.is_empty(), "{mismatches:?}");
    }

    /// The name `asked` is given in a room whose members are `members`.
    fn check_unique(members: &[&str], asked: &str, expected: &str) {
        let likenesses: Vec<Likeness> = members.iter().map(|name| Likeness::of(name)).collect();
        let taken = |name: &Likeness| likenesses.iter().any(|member| member.resembles(name));
        let name = DisplayName::parse(asked).unwrap();
        assert_eq!(
            name.unique(taken).as_str(),
            expected,
            "{asked:?} among {members:?}"
        );
    }

    #[test]
    fn names_that_look_alike_are_made_unique() {
        check_unique(&["paypal"], "p\u{430}ypal", "p\u{430}ypal (2)");
        check_unique(&["p\u{430}ypal"], "paypal", "paypal (2)");
        check_unique(&["Ad\u{e9}le"], "Ade\u{301}le", "Ad\u{e9}le (2)");
        check_unique(&["Ad\u{e9}le"], "\u{2066}Ad\u{e9}le", "Ad\u{e9}le (2)");
        check_unique(
            &["Ad\u{e9}le", "Ad\u{e9}le (2)"],
            "ade\u{301}le",
            "ade\u{301}le (3)".nfc().collect::<String>().as_str(),
        );
        check_unique(&["xena"], "Xena", "Xena (2)");
        check_unique(&["XENA"], "xena", "xena (2)");
        check_unique(&["Bill"], "BiIl", "BiIl (2)");
        check_unique(&["rn"], "m", "m (2)");
        check_unique(&["ada (2)"], "ada (2)", "ada (2) (2)");
        check_unique(&["ada"], "bob", "bob");
        check_unique(&["ada"], "ada b", "ada b");
        check_unique(&["Adele"], "Ad\u{e9}le", "Ad\u{e9}le");
    }

    #[test]
    fn messages_lose_controls_overrides_and_isolates_but_keep_lines() {
        let check = |raw: &str, expected: &str| {
            assert_eq!(clean_text(raw).as_deref(), Ok(expected), "{raw:?}");
        };
        check("\u{2067}evil\u{2069} text", "evil text");
        check("a\u{202e}b\u{2066}c", "abc");
        check("soft\u{ad}hyphen\u{3164}", "softhyphen");
        check("line\n\tindented", "line\n\tindented");
        check("Ade\u{301}le", "Ade\u{301}le");
        // A family emoji and a red heart keep their joiners and variation selector.
        check(
            "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467} \u{2764}\u{fe0f}",
            "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467} \u{2764}\u{fe0f}",
        );
        assert_eq!(
            clean_text("\u{200d}\u{fe0f}\n"),
            Err(ValidationError::EmptyMessage)
        );
        assert_eq!(
            clean_text("\u{2066}\u{2069}\u{ad}"),
            Err(ValidationError::EmptyMessage)
        );
    }

    #[test]
    fn unique_names_stay_within_the_limit() {
        let long = DisplayName::parse(&"x".repeat(32)).unwrap();
        let unique = long.unique(|name| name.resembles(&long.likeness()));
        assert_eq!(unique.as_str().chars().count(), 32);
        assert!(unique.as_str().ends_with(" (2)"));
    }
}
