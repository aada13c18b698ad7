//! The compaction URI parameters of a connection: `retention=`,
//! `compact_every=` and `snapshot_group=` (`docs/object.md`, §14). Like `poll=`, a value that
//! does not parse is `SQLITE_CANTOPEN` naming the parameter.

use std::time::Duration;

use vfs_core::{Error, Result};

/// What a connection's commits and `PRAGMA object_gc` use: the
/// registration's [`ObjectOptions`](crate::ObjectOptions), unless its URI
/// says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Compaction {
    /// The window garbage collection keeps every state of.
    pub retention: Duration,
    /// Compact after a commit leaving this many commits above the newest
    /// snapshot (`None`: never by policy).
    pub every: Option<u64>,
    /// Pages per group of a snapshot this connection's compactions write.
    pub group_pages: u32,
}

impl Compaction {
    /// `defaults` with the URI's `retention` and `compact_every` values,
    /// if given.
    pub(crate) fn from_uri(
        defaults: Compaction,
        retention: Option<&str>,
        compact_every: Option<&str>,
    ) -> Result<Compaction> {
        Ok(Compaction {
            retention: match retention {
                Some(text) => parse_duration("retention", text)?,
                None => defaults.retention,
            },
            every: match compact_every {
                Some(text) => parse_commits("compact_every", text)?,
                None => defaults.every,
            },
            group_pages: defaults.group_pages,
        })
    }

    /// This policy with the URI's `snapshot_group=<pages>`, if given.
    pub(crate) fn with_group_pages(mut self, text: Option<&str>) -> Result<Compaction> {
        if let Some(text) = text {
            self.group_pages = parse_group_pages(text)?;
        }
        Ok(self)
    }
}

/// A duration as a URI spells it: milliseconds (`3600000`), or a whole
/// number with a unit: `ms`, `s`, `m`, `h` or `d` (`90s`, `1h`, `7d`).
pub(crate) fn parse_duration(name: &str, text: &str) -> Result<Duration> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let millis_per: Option<u64> = match unit {
        "" | "ms" => Some(1),
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        _ => None,
    };
    let ms = match (number.parse::<u64>(), millis_per) {
        (Ok(n), Some(per)) => n.checked_mul(per),
        _ => None,
    };
    ms.map(Duration::from_millis).ok_or_else(|| {
        Error::cant_open(format!(
            "vfs-object: {name}={text:?} is not a duration (milliseconds, or a whole number \
             with ms, s, m, h or d: 3600000, 90s, 1h, 7d)"
        ))
    })
}

/// A number of commits as a URI spells it; 0 is none.
pub(crate) fn parse_commits(name: &str, text: &str) -> Result<Option<u64>> {
    let n: u64 = text.trim().parse().map_err(|_| {
        Error::cant_open(format!(
            "vfs-object: {name}={text:?} is not a number of commits (0 for none)"
        ))
    })?;
    Ok((n > 0).then_some(n))
}

/// Pages per snapshot group as a URI spells it: a whole number above 0.
pub(crate) fn parse_group_pages(text: &str) -> Result<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Error::cant_open(format!(
                "vfs-object: snapshot_group={text:?} is not a number of pages (1 or more)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_counts_parse_strictly() {
        let ms = |t: &str| parse_duration("retention", t).map(|d| d.as_millis());
        assert_eq!(ms("250").unwrap(), 250);
        assert_eq!(ms(" 250ms ").unwrap(), 250);
        assert_eq!(ms("90s").unwrap(), 90_000);
        assert_eq!(ms("2m").unwrap(), 120_000);
        assert_eq!(ms("1h").unwrap(), 3_600_000);
        assert_eq!(ms("7d").unwrap(), 604_800_000);
        assert_eq!(ms("0").unwrap(), 0);
        for bad in [
            "",
            "h",
            "1.5h",
            "-1",
            "1 h",
            "1w",
            "1hour",
            "99999999999999999999d",
        ] {
            let e = parse_duration("retention", bad).unwrap_err();
            assert_eq!(e.code(), Some(vfs_core::codes::SQLITE_CANTOPEN));
            assert!(e.message().contains("retention="), "{e}");
        }
        assert_eq!(parse_commits("compact_every", "100").unwrap(), Some(100));
        assert_eq!(parse_commits("compact_every", "0").unwrap(), None);
        for bad in ["", "x", "-3", "1e3"] {
            let e = parse_commits("compact_every", bad).unwrap_err();
            assert!(e.message().contains("compact_every="), "{e}");
        }
        assert_eq!(parse_group_pages(" 8 ").unwrap(), 8);
        for bad in ["", "0", "-8", "8k", "99999999999"] {
            let e = parse_group_pages(bad).unwrap_err();
            assert!(e.message().contains("snapshot_group="), "{e}");
        }
    }
}
