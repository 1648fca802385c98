//! Subdue windows for standalone checks (`check_subdued?` / `in_time_window?` in
//! sensu 1.9.0 `lib/sensu/utilities.rb`).
//!
//! `subdue.days.{all|monday…sunday}` holds `{begin, end}` time-of-day strings such as
//! `"5:00 PM"`, read in local time. A window whose end is before its begin crosses
//! midnight and is split there.

use chrono::{DateTime, Datelike, Local, NaiveTime, TimeZone, Weekday};
use serde_json::Value;

/// Parse a time of day as Ruby's `Time.parse` does for the forms Sensu documents:
/// `17:00`, `17:00:30`, `5:00 PM`, `5PM`, `5:00:00 am`, optionally followed by `UTC`,
/// `Z`, `GMT` or a `±HH:MM` offset (converted to local time).
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    parse_time_in(s, &Local)
}

fn parse_time_in<Tz: TimeZone>(s: &str, local: &Tz) -> Option<NaiveTime> {
    let mut rest = s.trim().to_ascii_uppercase();
    let mut offset_secs: Option<i32> = None;
    for zone in [" UTC", " GMT", "Z", " Z"] {
        if let Some(stripped) = rest.strip_suffix(zone) {
            rest = stripped.trim_end().to_string();
            offset_secs = Some(0);
            break;
        }
    }
    if offset_secs.is_none()
        && let Some(pos) = rest.rfind(['+', '-'])
    {
        let (head, tz) = rest.split_at(pos);
        let sign = if tz.starts_with('-') { -1 } else { 1 };
        let digits: String = tz[1..].chars().filter(char::is_ascii_digit).collect();
        if digits.len() == 4 && head.contains(':') {
            let h: i32 = digits[..2].parse().ok()?;
            let m: i32 = digits[2..].parse().ok()?;
            offset_secs = Some(sign * (h * 3600 + m * 60));
            rest = head.trim_end().to_string();
        }
    }
    let (clock, meridian) = if let Some(r) = rest.strip_suffix("PM") {
        (r.trim_end(), Some(true))
    } else if let Some(r) = rest.strip_suffix("AM") {
        (r.trim_end(), Some(false))
    } else {
        (rest.as_str(), None)
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    if parts.len() == 1 && meridian.is_none() {
        return None;
    }
    let mut hour: u32 = parts[0].parse().ok()?;
    let minute: u32 = parts.get(1).map_or(Ok(0), |p| p.parse()).ok()?;
    let second: u32 = parts.get(2).map_or(Ok(0), |p| p.parse()).ok()?;
    match meridian {
        Some(pm) => {
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour = match (pm, hour) {
                (false, 12) => 0,
                (false, h) => h,
                (true, 12) => 12,
                (true, h) => h + 12,
            };
        }
        None if hour > 23 => return None,
        None => {}
    }
    let time = NaiveTime::from_hms_opt(hour, minute, second)?;
    match offset_secs {
        None => Some(time),
        Some(offset) => {
            let fixed = chrono::FixedOffset::east_opt(offset)?;
            let today = chrono::Utc::now().date_naive();
            let at = fixed.from_local_datetime(&today.and_time(time)).single()?;
            Some(at.with_timezone(local).time())
        }
    }
}

/// Whether `now` falls in one `{begin, end}` window.
fn in_time_window(window: &Value, now: NaiveTime) -> bool {
    let (Some(begin), Some(end)) = (
        window.get("begin").and_then(Value::as_str).and_then(parse_time),
        window.get("end").and_then(Value::as_str).and_then(parse_time),
    ) else {
        return false;
    };
    let (mut begin, mut end) = (begin, end);
    if end < begin {
        if now < end {
            begin = NaiveTime::MIN;
        } else {
            end = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
        }
    }
    now >= begin && now <= end
}

fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// Whether the check definition is subdued at `now` (local time).
pub fn is_subdued(check: &serde_json::Map<String, Value>, now: DateTime<Local>) -> bool {
    let Some(days) = check.get("subdue").and_then(|s| s.get("days")).and_then(Value::as_object) else {
        return false;
    };
    let time = now.time();
    ["all", day_name(now.weekday())].iter().any(|day| {
        days.get(*day).and_then(Value::as_array).is_some_and(|windows| windows.iter().any(|w| in_time_window(w, time)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    fn fmt(t: DateTime<Local>) -> String {
        t.format("%-I:%M:%S %p").to_string()
    }

    #[test]
    fn parses_the_documented_forms() {
        let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s);
        assert_eq!(parse_time("5:00 PM"), t(17, 0, 0));
        assert_eq!(parse_time("12:30 AM"), t(0, 30, 0));
        assert_eq!(parse_time("12:00 PM"), t(12, 0, 0));
        assert_eq!(parse_time("17:00"), t(17, 0, 0));
        assert_eq!(parse_time("11:59:59 pm"), t(23, 59, 59));
        assert_eq!(parse_time("5PM"), t(17, 0, 0));
        assert_eq!(parse_time("25:00"), None);
        assert_eq!(parse_time("soon"), None);
        assert_eq!(parse_time_in("10:00 UTC", &chrono::Utc), t(10, 0, 0));
        assert_eq!(parse_time_in("10:00 +01:00", &chrono::Utc), t(9, 0, 0));
    }

    // Spec §7 item 46 (windows are relative to now, as in sensu's utilities_spec).
    #[test]
    fn subdue_vectors() {
        let now = Local::now();
        // Keep the ±1 h window inside one day so the vector is not about midnight.
        let now = if now.time() < NaiveTime::from_hms_opt(1, 30, 0).unwrap()
            || now.time() > NaiveTime::from_hms_opt(22, 30, 0).unwrap()
        {
            now - Duration::hours(3)
        } else {
            now
        };
        let window = json!([{"begin": fmt(now - Duration::hours(1)), "end": fmt(now + Duration::hours(1))}]);
        let check = |days: Value| json!({"subdue": {"days": days}}).as_object().cloned().unwrap();
        assert!(!is_subdued(&check(json!({})), now));
        assert!(is_subdued(&check(json!({"all": window})), now));
        assert!(is_subdued(&check(json!({day_name(now.weekday()): window})), now));
        assert!(!is_subdued(&check(json!({day_name(now.weekday().succ()): window})), now));
    }

    #[test]
    fn window_across_midnight() {
        let w = json!({"begin": "10:00 PM", "end": "2:00 AM"});
        assert!(in_time_window(&w, NaiveTime::from_hms_opt(23, 0, 0).unwrap()));
        assert!(in_time_window(&w, NaiveTime::from_hms_opt(1, 0, 0).unwrap()));
        assert!(!in_time_window(&w, NaiveTime::from_hms_opt(12, 0, 0).unwrap()));
    }
}
