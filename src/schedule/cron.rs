//! Cron schedules for standalone checks (Sensu used `parse-cron`, 5 fields, local time).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Local};

/// Parse a cron expression (5 fields as Sensu, or 6 with seconds).
pub fn parse(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::Cron::from_str(expr)
}

/// Whether `expr` is a usable cron expression.
pub fn is_valid(expr: &str) -> bool {
    parse(expr).is_ok_and(|c| c.find_next_occurrence(&Local::now(), false).is_ok())
}

/// Time from `now` until the next matching time strictly after it.
pub fn delay_until_next(cron: &croner::Cron, now: DateTime<Local>) -> Option<Duration> {
    let next = cron.find_next_occurrence(&now, false).ok()?;
    (next - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_minute_fires_within_a_minute() {
        let cron = parse("* * * * *").unwrap();
        let d = delay_until_next(&cron, Local::now()).unwrap();
        assert!(d <= Duration::from_secs(60));
        assert!(!is_valid("not cron"));
        assert!(is_valid("*/5 * * * *"));
    }
}
