//! The connections' timers: a hierarchical timing wheel (Varghese and Lauck) of one-second
//! slots.
//!
//! A timer is (deadline, connection slot, generation). One due within the wheel's revolution
//! (4096 s) goes into the slot of its deadline's second; a later one into the slot of its
//! 4096-second period in a second wheel, whose slot moves down into the first wheel when its
//! period begins (each timer at most once: the five days of an established TCP connection
//! cost one move, not a visit per revolution). [`Wheel::due`] visits the seconds that passed
//! and hands out the timers whose deadline is reached. Arming and firing cost O(1), against
//! the O(log n) cache misses of a binary heap of a million timers. The tracker arms lazily: a
//! connection whose deadline moved later keeps its timer, which is re-armed when it fires.

use super::Millis;

/// Seconds the wheel covers in one revolution.
const SLOTS: u64 = 4096;
const TICK: Millis = 1000;

type Timer = (Millis, u32, u32);

#[derive(Debug)]
pub(super) struct Wheel {
    slots: Vec<Vec<Timer>>,
    /// Timers beyond the first wheel's revolution, by 4096-second period.
    far: Vec<Vec<Timer>>,
    /// The second visited last (its slot may still hold timers due later in that second).
    tick: u64,
    /// A spare vector, so that visiting a slot allocates nothing.
    spare: Vec<Timer>,
}

impl Wheel {
    pub(super) fn new() -> Wheel {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            far: (0..SLOTS).map(|_| Vec::new()).collect(),
            tick: 0,
            spare: Vec::new(),
        }
    }

    /// Arms a timer. The caller's clock only moves forward: a deadline already past goes into
    /// the current second's slot (it fires at the next visit).
    pub(super) fn push(&mut self, at: Millis, slot: u32, gen: u32) {
        let t = (at / TICK).max(self.tick);
        if t / SLOTS > self.tick / SLOTS {
            // A later period: the second wheel (a period more than a revolution of it ahead
            // comes round again and is put back).
            self.far[((t / SLOTS) % SLOTS) as usize].push((at, slot, gen));
        } else {
            self.slots[(t % SLOTS) as usize].push((at, slot, gen));
        }
    }

    /// The timers due at `now` (deadline reached), into `out`.
    pub(super) fn due(&mut self, now: Millis, out: &mut Vec<Timer>) {
        let now_tick = now / TICK;
        if now_tick < self.tick {
            return; // time does not go back
        }
        // A new period began: its timers move down into the first wheel.
        let (old_period, new_period) = (self.tick / SLOTS, now_tick / SLOTS);
        if new_period > old_period {
            self.tick = now_tick;
            let first = (old_period + 1).max(new_period.saturating_sub(SLOTS - 1));
            for p in first..=new_period {
                let i = (p % SLOTS) as usize;
                let moving = std::mem::take(&mut self.far[i]);
                for e in moving {
                    // Due already, or in this period: the first wheel (the visit below finds
                    // it); a later period: back up.
                    self.push(e.0, e.1, e.2);
                }
            }
            // The whole first wheel is one revolution: visit every slot once.
            for i in 0..SLOTS as usize {
                self.visit(i, now, out);
            }
            return;
        }
        // Each slot once at most, however long since the last visit.
        let first = self.tick;
        for t in first..=now_tick {
            self.visit((t % SLOTS) as usize, now, out);
        }
        self.tick = now_tick;
    }

    /// The due timers of one slot into `out`; the others stay.
    fn visit(&mut self, i: usize, now: Millis, out: &mut Vec<Timer>) {
        if self.slots[i].is_empty() {
            return;
        }
        std::mem::swap(&mut self.slots[i], &mut self.spare);
        for e in self.spare.drain(..) {
            if e.0 <= now {
                out.push(e);
            } else {
                self.slots[i].push(e);
            }
        }
    }

    /// Whether this exact timer is armed (the consistency check).
    pub(super) fn contains(&self, at: Millis, slot: u32, gen: u32) -> bool {
        self.slots
            .iter()
            .chain(&self.far)
            .any(|s| s.contains(&(at, slot, gen)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_the_deadline_and_not_before() {
        let mut w = Wheel::new();
        let mut out = Vec::new();
        w.push(29_999, 1, 1);
        w.push(30_000, 2, 1);
        w.push(30_001, 3, 1);
        // More than a revolution ahead: stays until its own time.
        w.push(SLOTS * TICK + 30_000, 4, 1);
        w.due(29_998, &mut out);
        assert!(out.is_empty());
        w.due(30_000, &mut out);
        assert_eq!(out, [(29_999, 1, 1), (30_000, 2, 1)]);
        out.clear();
        w.due(30_000, &mut out);
        assert!(out.is_empty());
        w.due(31_000, &mut out);
        assert_eq!(out, [(30_001, 3, 1)]);
        out.clear();
        assert!(w.contains(SLOTS * TICK + 30_000, 4, 1));
        w.due(SLOTS * TICK + 29_999, &mut out);
        assert!(out.is_empty());
        // A long jump visits every slot once.
        w.due(10 * SLOTS * TICK, &mut out);
        assert_eq!(out, [(SLOTS * TICK + 30_000, 4, 1)]);
    }

    #[test]
    fn far_timers_move_down_once_and_fire_on_time() {
        let mut w = Wheel::new();
        let mut out = Vec::new();
        let five_days = 5 * 24 * 3600 * TICK;
        w.push(five_days, 1, 1);
        w.push(five_days + 1, 2, 1);
        w.push(SLOTS * SLOTS * TICK + 5, 3, 1); // more than a revolution of the far wheel
        let mut t = 0;
        while t < five_days - 1 {
            t += 7_777;
            w.due(t.min(five_days - 1), &mut out);
            assert!(out.is_empty(), "early at {t}");
        }
        w.due(five_days, &mut out);
        assert_eq!(out, [(five_days, 1, 1)]);
        out.clear();
        w.due(five_days + 1, &mut out);
        assert_eq!(out, [(five_days + 1, 2, 1)]);
        out.clear();
        assert!(w.contains(SLOTS * SLOTS * TICK + 5, 3, 1));
        w.due(SLOTS * SLOTS * TICK + 4, &mut out);
        assert!(out.is_empty());
        w.due(SLOTS * SLOTS * TICK + 5, &mut out);
        assert_eq!(out, [(SLOTS * SLOTS * TICK + 5, 3, 1)]);
    }
}
