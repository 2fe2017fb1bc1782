//! Vector's `timezone`: `local` or an IANA name (`Europe/Berlin`), for the strftime
//! specifiers of file names. Unlike Vector, which fixes the offset when the sink
//! starts, the offset is looked up for each time rendered, so a file name follows a
//! daylight-saving change without a restart.

use serde::{Deserialize, Deserializer};

/// A time zone to render local times in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeZone {
    /// The machine's zone (`TZ`, else `/etc/localtime`).
    Local,
    /// A zone of the IANA database, compiled in.
    Named(chrono_tz::Tz),
}

impl std::str::FromStr for TimeZone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("local") {
            return Ok(TimeZone::Local);
        }
        s.parse::<chrono_tz::Tz>()
            .map(TimeZone::Named)
            .map_err(|_| {
                format!(
                    "`{s}` is not `local` or an IANA time zone name (e.g. `Europe/Berlin`, `UTC`)"
                )
            })
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_nonsense_is_refused() {
        assert_eq!("local".parse::<TimeZone>(), Ok(TimeZone::Local));
        assert_eq!(
            "Europe/Berlin".parse::<TimeZone>(),
            Ok(TimeZone::Named(chrono_tz::Tz::Europe__Berlin))
        );
        assert!("Mars/Olympus"
            .parse::<TimeZone>()
            .unwrap_err()
            .contains("IANA"));
    }
}
