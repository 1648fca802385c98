//! The decision, pure: from a service's replica count, its bounds and its last moves, what
//! a request to scale it comes to — a new count within the bounds, or a refusal that says
//! why in one line. No I/O; the platforms read and apply.

use std::fmt;

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Add this many replicas.
    Up(u64),
    /// Remove this many replicas.
    Down(u64),
    /// Set the count.
    To(u64),
}

/// Which way a count changes (cooldowns are kept per direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// More replicas.
    Up,
    /// Fewer replicas.
    Down,
}

impl Direction {
    /// `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// The replica counts a service may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Fewest replicas (default 1).
    pub min: u64,
    /// Most replicas; unknown refuses every up-scale.
    pub max: Option<u64>,
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) => write!(f, "bounds {}..{max}", self.min),
            None => write!(f, "bounds {}..?", self.min),
        }
    }
}

/// When the service last moved each way, and how long a move holds the next one back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cooldown {
    /// Seconds after a move before the next one in the same direction.
    pub seconds: u64,
    /// Epoch seconds of the last up-scale.
    pub last_up: Option<i64>,
    /// Epoch seconds of the last down-scale.
    pub last_down: Option<i64>,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Scale to `to`.
    Scale {
        /// The new count.
        to: u64,
        /// The request was cut to a bound.
        clamped: bool,
    },
    /// Stay; why.
    Refused(String),
}

/// A decision about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The service.
    pub service: String,
    /// Its replica count now.
    pub from: u64,
    /// What was asked.
    pub request: Move,
    /// Its bounds.
    pub bounds: Bounds,
    /// The verdict.
    pub verdict: Verdict,
}

impl Decision {
    /// The count after the decision.
    pub fn to(&self) -> u64 {
        match self.verdict {
            Verdict::Scale { to, .. } => to,
            Verdict::Refused(_) => self.from,
        }
    }

    /// The direction of the change (of the request, when refused).
    pub fn direction(&self) -> Direction {
        match self.request {
            Move::Up(_) => Direction::Up,
            Move::Down(_) => Direction::Down,
            Move::To(n) => {
                if n >= self.from {
                    Direction::Up
                } else {
                    Direction::Down
                }
            }
        }
    }

    /// How the request reads (`up by 1`, `to 5`).
    pub fn asked(&self) -> String {
        match self.request {
            Move::Up(n) => format!("up by {n}"),
            Move::Down(n) => format!("down by {n}"),
            Move::To(n) => format!("to {n}"),
        }
    }

    /// The one line a person reads: `SCALE OK: api 3 → 4 (up by 1; bounds 2..6)`.
    pub fn line(&self) -> String {
        match &self.verdict {
            Verdict::Scale { to, clamped } => {
                let clamp = if *clamped { ", clamped to the bounds" } else { "" };
                format!("SCALE OK: {} {} → {to} ({}{clamp}; {})", self.service, self.from, self.asked(), self.bounds)
            }
            Verdict::Refused(why) => {
                format!(
                    "SCALE REFUSED: {} stays at {}: {why} ({}; {})",
                    self.service,
                    self.from,
                    self.asked(),
                    self.bounds
                )
            }
        }
    }
}

/// How many seconds ago `last` was, if a move then still holds the next one back at `now`.
/// A recorded time in the future (clocks that disagree) counts as inside the cooldown.
pub fn cooling(last: Option<i64>, seconds: u64, now: i64) -> Option<i64> {
    let last = last?;
    (last.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX)) > now).then(|| now.saturating_sub(last).max(0))
}

/// Decide a request for a service with `from` replicas, at epoch second `now`.
pub fn decide(service: &str, from: u64, request: Move, bounds: Bounds, cooldown: Cooldown, now: i64) -> Decision {
    let refuse =
        |why: String| Decision { service: service.to_string(), from, request, bounds, verdict: Verdict::Refused(why) };
    let wanted = match request {
        Move::Up(n) => from.saturating_add(n),
        Move::Down(n) => from.saturating_sub(n),
        Move::To(n) => n,
    };
    if matches!(request, Move::Up(0) | Move::Down(0)) {
        return refuse("nothing to do: a move of 0".into());
    }
    if let Some(max) = bounds.max.filter(|max| *max < bounds.min) {
        return refuse(format!("inconsistent bounds: min {} is above max {max}", bounds.min));
    }
    let up = match request {
        Move::Up(_) => true,
        Move::Down(_) => false,
        Move::To(n) => n > from,
    };
    let target = if up {
        let Some(max) = bounds.max else {
            return refuse("no max known for an up-scale (set com.df.scaleMax, concierge.scale.max or --max)".into());
        };
        if from >= max {
            return refuse("at the max".into());
        }
        wanted.min(max).max(bounds.min)
    } else {
        if from <= bounds.min && wanted < from {
            return refuse("at the min".into());
        }
        wanted.max(bounds.min).min(bounds.max.unwrap_or(u64::MAX).max(bounds.min))
    };
    if target == from {
        return refuse(format!("already at {from}"));
    }
    let (last, direction) = if up { (cooldown.last_up, "up") } else { (cooldown.last_down, "down") };
    if let Some(ago) = cooling(last, cooldown.seconds, now) {
        return refuse(format!("scaled {direction} {ago} s ago, cooldown {} s", cooldown.seconds));
    }
    Decision {
        service: service.to_string(),
        from,
        request,
        bounds,
        verdict: Verdict::Scale { to: target, clamped: target != wanted },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { min: 2, max: Some(6) };
    const NO_COOLDOWN: Cooldown = Cooldown { seconds: 300, last_up: None, last_down: None };

    fn line(from: u64, request: Move, bounds: Bounds, cooldown: Cooldown) -> String {
        decide("api", from, request, bounds, cooldown, 1_000_000).line()
    }

    #[test]
    fn within_the_bounds() {
        assert_eq!(line(3, Move::Up(1), B, NO_COOLDOWN), "SCALE OK: api 3 → 4 (up by 1; bounds 2..6)");
        assert_eq!(line(3, Move::Down(1), B, NO_COOLDOWN), "SCALE OK: api 3 → 2 (down by 1; bounds 2..6)");
        assert_eq!(line(3, Move::To(5), B, NO_COOLDOWN), "SCALE OK: api 3 → 5 (to 5; bounds 2..6)");
    }

    #[test]
    fn clamped_or_refused_at_the_bounds() {
        assert_eq!(
            line(5, Move::Up(4), B, NO_COOLDOWN),
            "SCALE OK: api 5 → 6 (up by 4, clamped to the bounds; bounds 2..6)"
        );
        assert_eq!(
            line(6, Move::Up(1), B, NO_COOLDOWN),
            "SCALE REFUSED: api stays at 6: at the max (up by 1; bounds 2..6)"
        );
        assert_eq!(
            line(2, Move::Down(1), B, NO_COOLDOWN),
            "SCALE REFUSED: api stays at 2: at the min (down by 1; bounds 2..6)"
        );
        assert_eq!(
            line(3, Move::To(9), B, NO_COOLDOWN),
            "SCALE OK: api 3 → 6 (to 9, clamped to the bounds; bounds 2..6)"
        );
        assert_eq!(
            line(3, Move::To(0), B, NO_COOLDOWN),
            "SCALE OK: api 3 → 2 (to 0, clamped to the bounds; bounds 2..6)"
        );
        assert_eq!(
            line(6, Move::To(9), B, NO_COOLDOWN),
            "SCALE REFUSED: api stays at 6: at the max (to 9; bounds 2..6)"
        );
        assert_eq!(
            line(4, Move::To(4), B, NO_COOLDOWN),
            "SCALE REFUSED: api stays at 4: already at 4 (to 4; bounds 2..6)"
        );
        // Below the min, a down-scale cannot go lower; an up-scale to the min is fine.
        assert_eq!(line(1, Move::Up(1), B, NO_COOLDOWN), "SCALE OK: api 1 → 2 (up by 1; bounds 2..6)");
    }

    #[test]
    fn no_up_scale_without_a_max() {
        let open = Bounds { min: 1, max: None };
        assert_eq!(
            line(3, Move::Up(1), open, NO_COOLDOWN),
            "SCALE REFUSED: api stays at 3: no max known for an up-scale (set com.df.scaleMax, concierge.scale.max or --max) (up by 1; bounds 1..?)"
        );
        assert_eq!(line(3, Move::Down(1), open, NO_COOLDOWN), "SCALE OK: api 3 → 2 (down by 1; bounds 1..?)");
    }

    #[test]
    fn cooldown_per_direction() {
        let recent = Cooldown { seconds: 300, last_up: Some(1_000_000 - 12), last_down: None };
        assert_eq!(
            line(3, Move::Up(1), B, recent),
            "SCALE REFUSED: api stays at 3: scaled up 12 s ago, cooldown 300 s (up by 1; bounds 2..6)"
        );
        assert_eq!(line(3, Move::Down(1), B, recent), "SCALE OK: api 3 → 2 (down by 1; bounds 2..6)");
        let expired = Cooldown { seconds: 300, last_up: Some(1_000_000 - 300), last_down: None };
        assert_eq!(line(3, Move::Up(1), B, expired), "SCALE OK: api 3 → 4 (up by 1; bounds 2..6)");
        assert_eq!(
            line(3, Move::Up(0), B, NO_COOLDOWN),
            "SCALE REFUSED: api stays at 3: nothing to do: a move of 0 (up by 0; bounds 2..6)"
        );
        // A last move recorded in the future (another host's clock) holds the next one back.
        let skewed = Cooldown { seconds: 300, last_up: Some(1_000_000 + 600), last_down: None };
        assert_eq!(
            line(3, Move::Up(1), B, skewed),
            "SCALE REFUSED: api stays at 3: scaled up 0 s ago, cooldown 300 s (up by 1; bounds 2..6)"
        );
    }

    #[test]
    fn inconsistent_bounds_scale_nothing() {
        let upside_down = Bounds { min: 5, max: Some(3) };
        assert_eq!(
            line(2, Move::Up(1), upside_down, NO_COOLDOWN),
            "SCALE REFUSED: api stays at 2: inconsistent bounds: min 5 is above max 3 (up by 1; bounds 5..3)"
        );
    }
}
