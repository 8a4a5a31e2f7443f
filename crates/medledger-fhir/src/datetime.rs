//! FHIR `date`, `dateTime`, `instant` and `time`, and the range of instants each value covers.
//!
//! A FHIR date is as precise as it is written: `2024` is the whole of 2024, `2024-03-05T10:00Z`
//! (in a search) the whole minute. Every value becomes a half-open [`DateRange`] in
//! milliseconds since 1970-01-01T00:00:00Z, which is what search comparisons need. Values
//! without a time zone (dates, and search values without one) are read as UTC: this crate has
//! no local time zone, and a server's would differ from node to node.

use time::{Date, Month};

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;
/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
/// 9999-12-31T23:59:59.999Z, the last instant FHIR (four-digit years) can write.
const MAX_INSTANT_MS: u64 = 253_402_300_799_999;

/// The instants a FHIR date or time value covers: `start_ms` inclusive, `end_ms` exclusive,
/// in milliseconds since 1970-01-01T00:00:00Z. An open end of a `Period` is `i64::MIN` or
/// `i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    /// First instant in the range.
    pub start_ms: i64,
    /// First instant after the range.
    pub end_ms: i64,
}

impl DateRange {
    /// The range of every instant (a `Period` with neither start nor end).
    pub const UNBOUNDED: DateRange = DateRange { start_ms: i64::MIN, end_ms: i64::MAX };

    /// Whether the two ranges share an instant.
    #[must_use]
    pub fn overlaps(&self, other: &DateRange) -> bool {
        self.start_ms < other.end_ms && other.start_ms < self.end_ms
    }

    /// Whether every instant of `other` is in this range.
    #[must_use]
    pub fn contains(&self, other: &DateRange) -> bool {
        self.start_ms <= other.start_ms && other.end_ms <= self.end_ms
    }

    /// Parses a FHIR `date` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
    pub fn parse_date(text: &str) -> Result<DateRange, &'static str> {
        parse(text, Flavour::Date)
    }

    /// Parses a FHIR `dateTime`: a date, or a full time to the second with a time zone.
    pub fn parse_date_time(text: &str) -> Result<DateRange, &'static str> {
        parse(text, Flavour::DateTime)
    }

    /// Parses a FHIR `instant`: a full date and time to the second with a time zone.
    pub fn parse_instant(text: &str) -> Result<DateRange, &'static str> {
        parse(text, Flavour::Instant)
    }

    /// Parses the date of a search parameter: like `dateTime`, but seconds and time zone may
    /// be left out (no zone means UTC).
    pub fn parse_search(text: &str) -> Result<DateRange, &'static str> {
        parse(text, Flavour::Search)
    }
}

/// Which lexical form is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Date,
    DateTime,
    Instant,
    Search,
}

impl Flavour {
    fn rule(self) -> &'static str {
        match self {
            Flavour::Date => "a FHIR date is YYYY, YYYY-MM or YYYY-MM-DD",
            Flavour::DateTime => {
                "a FHIR dateTime is YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with Z or ±hh:mm"
            }
            Flavour::Instant => "a FHIR instant is YYYY-MM-DDThh:mm:ss[.fff] with Z or ±hh:mm",
            Flavour::Search => {
                "a search date is YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]"
            }
        }
    }
}

/// A byte cursor over ASCII date text.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Cursor<'_> {
    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let digits = self.bytes.get(self.position..self.position + count)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.position += count;
        Some(digits.iter().fold(0, |number, digit| number * 10 + u32::from(digit - b'0')))
    }

    /// One or more ASCII digits, as text.
    fn digit_run(&mut self) -> Option<&[u8]> {
        let start = self.position;
        while self.bytes.get(self.position).is_some_and(u8::is_ascii_digit) {
            self.position += 1;
        }
        (self.position > start).then(|| &self.bytes[start..self.position])
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.position) == Some(&byte);
        self.position += usize::from(found);
        found
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn done(&self) -> bool {
        self.position == self.bytes.len()
    }
}

fn parse(text: &str, flavour: Flavour) -> Result<DateRange, &'static str> {
    let rule = flavour.rule();
    let mut cursor = Cursor { bytes: text.as_bytes(), position: 0 };
    let year = cursor.digits(4).ok_or(rule)?;
    let year = i32::try_from(year).map_err(|_| rule)?;
    if year == 0 {
        return Err("year 0000 is not a FHIR year");
    }
    let partial_allowed = flavour != Flavour::Instant;
    if cursor.done() && partial_allowed {
        return year_range(year);
    }
    if !cursor.eat(b'-') {
        return Err(rule);
    }
    let month = month_of(cursor.digits(2).ok_or(rule)?)?;
    if cursor.done() && partial_allowed {
        return month_range(year, month);
    }
    if !cursor.eat(b'-') {
        return Err(rule);
    }
    let day = u8::try_from(cursor.digits(2).ok_or(rule)?).map_err(|_| rule)?;
    let day_start_ms = days_since_epoch(year, month, day)? * MS_PER_DAY;
    if cursor.done() && partial_allowed {
        return Ok(DateRange { start_ms: day_start_ms, end_ms: day_start_ms + MS_PER_DAY });
    }
    if flavour == Flavour::Date || !cursor.eat(b'T') {
        return Err(rule);
    }
    let (offset_in_day_ms, width_ms) = time_of_day(&mut cursor, flavour)?;
    let zone_offset_ms = zone_offset(&mut cursor, flavour)?;
    if !cursor.done() {
        return Err(rule);
    }
    let start_ms = day_start_ms + offset_in_day_ms - zone_offset_ms;
    Ok(DateRange { start_ms, end_ms: start_ms + width_ms })
}

fn month_of(number: u32) -> Result<Month, &'static str> {
    u8::try_from(number).ok().and_then(|number| Month::try_from(number).ok()).ok_or("a month is 01 to 12")
}

fn days_since_epoch(year: i32, month: Month, day: u8) -> Result<i64, &'static str> {
    let date =
        Date::from_calendar_date(year, month, day).map_err(|_| "the day does not exist in that month")?;
    Ok(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

fn year_range(year: i32) -> Result<DateRange, &'static str> {
    let start_ms = days_since_epoch(year, Month::January, 1)? * MS_PER_DAY;
    let days = i64::from(time::util::days_in_year(year));
    Ok(DateRange { start_ms, end_ms: start_ms + days * MS_PER_DAY })
}

fn month_range(year: i32, month: Month) -> Result<DateRange, &'static str> {
    let start_ms = days_since_epoch(year, month, 1)? * MS_PER_DAY;
    let days = i64::from(time::util::days_in_month(month, year));
    Ok(DateRange { start_ms, end_ms: start_ms + days * MS_PER_DAY })
}

/// Reads `hh:mm[:ss[.fff…]]` and returns the offset into the day and the width of the range
/// the written precision covers. Seconds may be left out only in a search.
fn time_of_day(cursor: &mut Cursor<'_>, flavour: Flavour) -> Result<(i64, i64), &'static str> {
    let rule = flavour.rule();
    let hour = cursor.digits(2).ok_or(rule)?;
    if !cursor.eat(b':') {
        return Err(rule);
    }
    let minute = cursor.digits(2).ok_or(rule)?;
    if hour > 23 || minute > 59 {
        return Err("hours are 00 to 23 and minutes 00 to 59");
    }
    let minutes_ms = i64::from(hour) * MS_PER_HOUR + i64::from(minute) * MS_PER_MINUTE;
    if !cursor.eat(b':') {
        return if flavour == Flavour::Search { Ok((minutes_ms, MS_PER_MINUTE)) } else { Err(rule) };
    }
    let second = cursor.digits(2).ok_or(rule)?;
    // FHIR allows a leap second (60); it is read as the first second of the next minute.
    if second > 60 {
        return Err("seconds are 00 to 60");
    }
    let whole_ms = minutes_ms + i64::from(second) * MS_PER_SECOND;
    if !cursor.eat(b'.') {
        return Ok((whole_ms, MS_PER_SECOND));
    }
    let fraction = cursor.digit_run().ok_or(rule)?;
    Ok(fraction_ms(whole_ms, fraction))
}

/// Adds a decimal fraction of a second; precision beyond milliseconds is cut off.
fn fraction_ms(whole_ms: i64, fraction: &[u8]) -> (i64, i64) {
    let mut value_ms = 0;
    let mut width_ms = MS_PER_SECOND;
    for digit in fraction.iter().take(3) {
        width_ms /= 10;
        value_ms += i64::from(digit - b'0') * width_ms;
    }
    (whole_ms + value_ms, width_ms)
}

/// Reads `Z` or `±hh:mm` (R4 allows -13:59 to +14:00) and returns the offset east of UTC.
fn zone_offset(cursor: &mut Cursor<'_>, flavour: Flavour) -> Result<i64, &'static str> {
    let sign = match cursor.peek() {
        Some(b'Z') => {
            cursor.eat(b'Z');
            return Ok(0);
        }
        Some(b'+') => 1,
        Some(b'-') => -1,
        None if flavour == Flavour::Search => return Ok(0),
        _ => return Err("a time needs a time zone: Z or ±hh:mm"),
    };
    cursor.position += 1;
    let hours = cursor.digits(2).ok_or(flavour.rule())?;
    let minutes = if cursor.eat(b':') { cursor.digits(2).ok_or(flavour.rule())? } else { u32::MAX };
    if minutes > 59 || hours > 14 || (hours == 14 && minutes != 0) {
        return Err("a time zone is Z or ±hh:mm from -14:00 to +14:00");
    }
    Ok(sign * (i64::from(hours) * MS_PER_HOUR + i64::from(minutes) * MS_PER_MINUTE))
}

/// Checks a FHIR `time`: `hh:mm:ss` with an optional fraction, no time zone.
pub(crate) fn check_time(text: &str) -> Result<(), &'static str> {
    const RULE: &str = "a FHIR time is hh:mm:ss[.fff]";
    let mut cursor = Cursor { bytes: text.as_bytes(), position: 0 };
    time_of_day(&mut cursor, Flavour::Instant).map_err(|_| RULE)?;
    if cursor.done() { Ok(()) } else { Err(RULE) }
}

/// Formats milliseconds since 1970-01-01T00:00:00Z as a FHIR `instant` in UTC with
/// milliseconds, e.g. `2026-11-25T05:57:47.123Z`. Instants after 9999 (not writable in FHIR)
/// are clamped to the last millisecond of 9999.
#[must_use]
pub fn format_instant(ms: u64) -> String {
    let ms = ms.min(MAX_INSTANT_MS);
    let days = ms / 86_400_000;
    let in_day_ms = ms % 86_400_000;
    let julian_day = i32::try_from(days + 2_440_588).expect("clamped to year 9999, well within i32");
    let date = Date::from_julian_day(julian_day).expect("clamped to year 9999, which time supports");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year(),
        u8::from(date.month()),
        date.day(),
        in_day_ms / 3_600_000,
        in_day_ms / 60_000 % 60,
        in_day_ms / 1_000 % 60,
        in_day_ms % 1_000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = MS_PER_DAY;

    #[test]
    fn partial_dates_cover_their_whole_period() {
        let year = DateRange::parse_date("2024").expect("year");
        assert_eq!(year.end_ms - year.start_ms, 366 * DAY);
        let february = DateRange::parse_date("2023-02").expect("month");
        assert_eq!(february.end_ms - february.start_ms, 28 * DAY);
        assert_eq!(DateRange::parse_date("1970-01-01"), Ok(DateRange { start_ms: 0, end_ms: DAY }));
        assert!(DateRange::parse_date("1969-12-31").expect("before epoch").start_ms < 0);
    }

    #[test]
    fn times_honour_time_zones_and_precision() {
        let utc = DateRange::parse_date_time("2024-03-05T10:00:00Z").expect("utc");
        let plus_two = DateRange::parse_date_time("2024-03-05T12:00:00+02:00").expect("offset");
        assert_eq!(utc, plus_two);
        assert_eq!(utc.end_ms - utc.start_ms, 1_000);
        let millis = DateRange::parse_instant("2024-03-05T10:00:00.1234Z").expect("fraction");
        assert_eq!((millis.start_ms - utc.start_ms, millis.end_ms - millis.start_ms), (123, 1));
        let minute = DateRange::parse_search("2024-03-05T10:00").expect("search minute");
        assert_eq!((minute.start_ms, minute.end_ms - minute.start_ms), (utc.start_ms, 60_000));
    }

    #[test]
    fn malformed_values_are_refused() {
        for text in [
            "",
            "24",
            "2024-13",
            "2023-02-29",
            "2024-03-05T10:00:00",
            "2024-03-05T10:00Z",
            "0000",
            "2024-03-05T24:00:00Z",
            "2024-03-05T10:00:00+14:30",
            "2024-3-5",
            "2024-03-05 10:00:00Z",
        ] {
            assert!(DateRange::parse_date_time(text).is_err(), "{text:?}");
        }
        assert!(DateRange::parse_instant("2024-03-05").is_err());
        assert!(DateRange::parse_date("2024-03-05T10:00:00Z").is_err());
        assert!(check_time("10:15:00").is_ok() && check_time("10:15").is_err());
    }

    #[test]
    fn instants_format_in_utc_with_millis() {
        assert_eq!(format_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_instant(1_709_632_800_123), "2024-03-05T10:00:00.123Z");
        assert_eq!(format_instant(u64::MAX), "9999-12-31T23:59:59.999Z");
        let parsed = DateRange::parse_instant(&format_instant(1_709_632_800_123)).expect("round trip");
        assert_eq!(parsed.start_ms, 1_709_632_800_123);
    }
}
