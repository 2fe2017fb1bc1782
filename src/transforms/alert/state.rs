//! The life of one alert (a rule's group): inactive → pending (the condition holds, for
//! less than `for`) → firing → resolving (the value fell back past the clear threshold,
//! for less than `keep_firing_for`) → inactive. A value between the clear threshold and
//! the threshold keeps the state it is in (hysteresis).
//!
//! The flap guard sits on top: more than `flap_max_transitions` changes between firing
//! and not firing within `flap_window` pin the alert to firing, marked flapping, until
//! the underlying state has not changed for a whole window. What the outside sees
//! (and is notified of) changes only between firing and resolved.

use std::collections::VecDeque;

/// The machine's states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The condition does not hold.
    Inactive,
    /// It holds, not yet for `for`.
    Pending,
    /// It held for `for`; the alert is out.
    Firing,
    /// The value fell back; firing still, for `keep_firing_for`.
    Resolving,
}

impl State {
    /// The label value of `sluice_alert_transitions_total{to}`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
            State::Resolving => "resolving",
        }
    }

    fn is_firing(self) -> bool {
        matches!(self, State::Firing | State::Resolving)
    }
}

/// A rule's timing, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// `for_secs`.
    pub for_ms: u64,
    /// `keep_firing_for_secs`.
    pub keep_firing_for_ms: u64,
    /// `flap_max_transitions`.
    pub flap_max_transitions: usize,
    /// `flap_window_secs`.
    pub flap_window_ms: u64,
}

/// What the outside is told after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The alert fires (or, already firing, became flapping).
    Firing,
    /// It stopped firing.
    Resolved,
}

/// One alert's state (saved across restarts; times are wall-clock milliseconds).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AlertState {
    state: State,
    since_ms: u64,
    /// What the outside last saw: firing or not.
    shown_firing: bool,
    /// When the shown alert started firing.
    pub started_ms: u64,
    /// Pinned to firing by the flap guard.
    pub flapping: bool,
    /// Times the underlying state went between firing and not, within the flap window.
    flips: VecDeque<u64>,
    last_flip_ms: u64,
}

impl Default for AlertState {
    fn default() -> Self {
        Self {
            state: State::Inactive,
            since_ms: 0,
            shown_firing: false,
            started_ms: 0,
            flapping: false,
            flips: VecDeque::new(),
            last_flip_ms: 0,
        }
    }
}

impl AlertState {
    /// The machine's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the outside sees it firing.
    pub fn is_shown_firing(&self) -> bool {
        self.shown_firing
    }

    /// Whether nothing is going on: inactive, shown resolved, not flapping, and no
    /// change within the flap window left to remember.
    pub fn is_idle(&self) -> bool {
        self.state == State::Inactive
            && !self.shown_firing
            && !self.flapping
            && self.flips.is_empty()
    }

    /// One evaluation at `now`: `fire` is whether the value meets the threshold, `hold`
    /// whether it is still on the firing side of the clear threshold. Returns the
    /// machine's new state if it changed, and what to tell the outside.
    pub fn step(
        &mut self,
        now: u64,
        fire: bool,
        hold: bool,
        t: &Timing,
    ) -> (Option<State>, Option<Notice>) {
        let before = self.state;
        let elapsed = now.saturating_sub(self.since_ms);
        let next = match before {
            State::Inactive if fire && t.for_ms == 0 => State::Firing,
            State::Inactive if fire => State::Pending,
            State::Inactive => State::Inactive,
            State::Pending if !fire => State::Inactive,
            State::Pending if elapsed >= t.for_ms => State::Firing,
            State::Pending => State::Pending,
            State::Firing if hold || fire => State::Firing,
            State::Firing if t.keep_firing_for_ms == 0 => State::Inactive,
            State::Firing => State::Resolving,
            State::Resolving if hold || fire => State::Firing,
            State::Resolving if elapsed >= t.keep_firing_for_ms => State::Inactive,
            State::Resolving => State::Resolving,
        };
        let changed = (next != before).then_some(next);
        if changed.is_some() {
            self.state = next;
            self.since_ms = now;
        }
        if next.is_firing() != before.is_firing() {
            self.last_flip_ms = now;
            self.flips.push_back(now);
        }
        while self
            .flips
            .front()
            .is_some_and(|f| now.saturating_sub(*f) > t.flap_window_ms)
        {
            self.flips.pop_front();
        }
        let mut became_flapping = false;
        if !self.flapping && self.flips.len() > t.flap_max_transitions {
            self.flapping = true;
            became_flapping = true;
        } else if self.flapping && now.saturating_sub(self.last_flip_ms) >= t.flap_window_ms {
            self.flapping = false;
            self.flips.clear();
        }
        let shown = self.state.is_firing() || self.flapping;
        let notice = if shown && !self.shown_firing {
            self.started_ms = now;
            Some(Notice::Firing)
        } else if !shown && self.shown_firing {
            Some(Notice::Resolved)
        } else if became_flapping && shown {
            Some(Notice::Firing)
        } else {
            None
        };
        self.shown_firing = shown;
        (changed, notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        for_ms: 60_000,
        keep_firing_for_ms: 120_000,
        flap_max_transitions: 4,
        flap_window_ms: 600_000,
    };

    #[test]
    fn pending_for_then_firing_then_kept_then_resolved() {
        let mut s = AlertState::default();
        assert_eq!(s.step(0, true, true, &T), (Some(State::Pending), None));
        assert_eq!(s.step(30_000, true, true, &T), (None, None));
        assert_eq!(
            s.step(60_000, true, true, &T),
            (Some(State::Firing), Some(Notice::Firing))
        );
        assert_eq!(s.started_ms, 60_000);
        // Between clear and fire thresholds: still firing (hysteresis).
        assert_eq!(s.step(70_000, false, true, &T), (None, None));
        // Below clear: resolving, still shown firing, for keep_firing_for.
        assert_eq!(
            s.step(80_000, false, false, &T),
            (Some(State::Resolving), None)
        );
        assert_eq!(s.step(190_000, false, false, &T), (None, None));
        assert_eq!(
            s.step(200_000, false, false, &T),
            (Some(State::Inactive), Some(Notice::Resolved))
        );
        // Its changes are remembered for the flap window, then nothing is.
        assert!(!s.is_idle());
        s.step(900_000, false, false, &T);
        assert!(s.is_idle());
    }

    #[test]
    fn pending_that_stops_holding_never_fires_and_resolving_can_fire_again_silently() {
        let mut s = AlertState::default();
        s.step(0, true, true, &T);
        assert_eq!(
            s.step(59_000, false, false, &T),
            (Some(State::Inactive), None)
        );
        let no_for = Timing { for_ms: 0, ..T };
        assert_eq!(
            s.step(60_000, true, true, &no_for),
            (Some(State::Firing), Some(Notice::Firing))
        );
        s.step(61_000, false, false, &no_for);
        assert_eq!(s.state(), State::Resolving);
        // Back over the clear threshold inside keep_firing_for: firing, no new notice.
        assert_eq!(
            s.step(62_000, false, true, &no_for),
            (Some(State::Firing), None)
        );
    }

    #[test]
    fn a_flapping_alert_is_pinned_to_firing_until_quiet_for_a_window() {
        let t = Timing {
            for_ms: 0,
            keep_firing_for_ms: 0,
            flap_max_transitions: 4,
            flap_window_ms: 600_000,
        };
        let mut s = AlertState::default();
        let mut notices = Vec::new();
        // Oscillates every 10 s for 10 minutes.
        for i in 0..60u64 {
            let fire = i % 2 == 0;
            if let (_, Some(n)) = s.step(i * 10_000, fire, fire, &t) {
                notices.push((i, n));
            }
        }
        // Fired, resolved, fired, resolved, then the fifth flip pins it.
        assert_eq!(
            notices,
            [
                (0, Notice::Firing),
                (1, Notice::Resolved),
                (2, Notice::Firing),
                (3, Notice::Resolved),
                (4, Notice::Firing),
            ]
        );
        assert!(s.flapping && s.is_shown_firing());
        // Quiet (not firing) from 600 s on: resolved once a whole window has passed.
        let mut last = None;
        for i in 60..130u64 {
            if let (_, Some(n)) = s.step(i * 10_000, false, false, &t) {
                last = Some((i, n));
            }
        }
        assert_eq!(last, Some((119, Notice::Resolved)));
        assert!(!s.flapping);
    }
}
