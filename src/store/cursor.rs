//! Where a page of tokens starts: the cursor and its one grammar.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Where a page starts: after this token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub issued_at: DateTime<Utc>,
    pub id: Uuid,
}

/// The cursor's one grammar, `<nanoseconds>.<id>`: the spec publishes it,
/// and [`Cursor::decode`] reads exactly what it matches. Nanoseconds have
/// at most 19 digits and stay below `i64::MAX`; the id is a hyphenated UUID.
/// The empty text (the first page) matches too.
pub const CURSOR_PATTERN: &str = "^(([0-9]{1,18}|[0-8][0-9]{18})\\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$";

static CURSOR: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
    regex_lite::Regex::new(CURSOR_PATTERN).expect("the cursor pattern is a valid regex")
});

impl Cursor {
    /// `<nanoseconds>.<id>`; see [`CURSOR_PATTERN`].
    pub fn encode(&self) -> String {
        let nanos = self.issued_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        format!("{nanos}.{}", self.id)
    }

    /// A cursor [`encode`](Self::encode) gave, or any text the pattern
    /// matches but the empty one.
    pub fn decode(text: &str) -> Result<Self> {
        let bad = || Error::InvalidRequest("The cursor is not valid.".into());
        if text.is_empty() || !CURSOR.is_match(text) {
            return Err(bad());
        }
        let (nanos, id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            issued_at: DateTime::from_timestamp_nanos(nanos.parse().map_err(|_| bad())?),
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_wrote() {
        let cursor = Cursor {
            issued_at: DateTime::from_timestamp_nanos(1_764_000_000_123_456_789),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn only_what_the_pattern_matches_is_a_cursor() {
        let id = "0194f1c2-7b3a-7c4d-8e5f-6a7b8c9d0e1f";
        for good in [format!("0.{id}"), format!("8999999999999999999.{id}")] {
            assert!(Cursor::decode(&good).is_ok(), "{good}");
        }
        for bad in [
            String::new(),
            format!("9000000000000000000.{id}"),
            format!("+5.{id}"),
            format!("-5.{id}"),
            format!("5.{}", id.replace('-', "")),
            format!("5.{{{id}}}"),
            "5".into(),
        ] {
            assert!(Cursor::decode(&bad).is_err(), "{bad}");
        }
    }
}
