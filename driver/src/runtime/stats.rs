//! Per-queue statistics of the runtime (the CPU side; the FPGA's own counters are read from the
//! counters block). Fixed counters: recording a request or a punt allocates nothing and
//! formats nothing; names are given when the figures are read.

use super::split::Path;
use super::workers::CpuQueueError;
use crate::device::Status;
use fpga_virtio_hw::regs::{PuntReason, QueueError};
use serde::ser::{SerializeMap, Serializer};
use std::collections::BTreeMap;

/// Latency histogram with power-of-two buckets in nanoseconds (bucket i: < 2^(i+6) ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Histogram {
    pub buckets: [u64; Histogram::BUCKETS],
}

impl Histogram {
    pub const BUCKETS: usize = 24;

    pub fn record(&mut self, ns: u64) {
        let i = (64 - (ns >> 6).leading_zeros() as usize).min(Self::BUCKETS - 1);
        self.buckets[i] += 1;
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Upper bound of the bucket holding quantile `q` (0..=1), in ns.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let want = ((n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(1u64 << (i + 6));
            }
        }
        None
    }
}

/// Punt-ring entries by reason (the register map's `punt_reason`, counted by encoding).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PuntCounts {
    by_raw: [u64; PuntCounts::SLOTS],
    /// Entries whose reason the register map does not name.
    pub unknown: u64,
}

impl Default for PuntCounts {
    fn default() -> Self {
        PuntCounts {
            by_raw: [0; Self::SLOTS],
            unknown: 0,
        }
    }
}

impl PuntCounts {
    const SLOTS: usize = 32;

    /// Count one entry: its reason, or None for an encoding the register map does not name.
    pub fn count(&mut self, reason: Option<PuntReason>) {
        match reason {
            // Every reason's encoding is below SLOTS (checked at compile time below).
            Some(r) => self.by_raw[r.raw() as usize] += 1,
            None => self.unknown += 1,
        }
    }

    pub fn get(&self, r: PuntReason) -> u64 {
        self.by_raw.get(r.raw() as usize).copied().unwrap_or(0)
    }

    /// The reasons counted at least once, in the register map's order.
    pub fn iter(&self) -> impl Iterator<Item = (PuntReason, u64)> + '_ {
        PuntReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }

    /// Punted requests (every reason but `doorbell`, an event with no request).
    pub fn requests(&self) -> u64 {
        self.iter()
            .filter(|&(r, _)| r != PuntReason::Doorbell)
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.unknown
    }
}

const _: () = {
    let mut i = 0;
    while i < PuntReason::ALL.len() {
        assert!((PuntReason::ALL[i].raw() as usize) < PuntCounts::SLOTS);
        i += 1;
    }
};

impl std::fmt::Debug for PuntCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        m.entries(self.iter().map(|(r, n)| (r.name(), n)));
        if self.unknown > 0 {
            m.entry(&"unknown", &self.unknown);
        }
        m.finish()
    }
}

impl serde::Serialize for PuntCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (r, n) in self.iter() {
            m.serialize_entry(r.name(), &n)?;
        }
        if self.unknown > 0 {
            m.serialize_entry("unknown", &self.unknown)?;
        }
        m.end()
    }
}

/// Requests by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    pub ok: u64,
    pub error: u64,
    pub unsupported: u64,
    pub failed: u64,
}

impl StatusCounts {
    pub fn count(&mut self, s: Status) {
        *self.get_mut(s) += 1;
    }

    pub fn get(&self, s: Status) -> u64 {
        match s {
            Status::Ok => self.ok,
            Status::Error => self.error,
            Status::Unsupported => self.unsupported,
            Status::Failed => self.failed,
        }
    }

    fn get_mut(&mut self, s: Status) -> &mut u64 {
        match s {
            Status::Ok => &mut self.ok,
            Status::Error => &mut self.error,
            Status::Unsupported => &mut self.unsupported,
            Status::Failed => &mut self.failed,
        }
    }
}

/// The device's error state of an FPGA-owned queue (QUEUE.STATUS.cause, QUEUE.ERR_INFO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceQueueError {
    /// None: a cause the register map does not name (the raw value is in `raw_cause`).
    pub cause: Option<QueueError>,
    pub raw_cause: u32,
    pub detail: u32,
}

impl std::fmt::Display for DeviceQueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cause {
            Some(c) => write!(f, "{}", c.name())?,
            None => write!(f, "cause {}", self.raw_cause)?,
        }
        write!(f, " (detail {:#x})", self.detail)
    }
}

fn display<T: std::fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// One queue's CPU-side counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Requests the CPU completed for this queue (served CPU-owned or punted).
    pub requests: u64,
    /// Bytes written into guest buffers (used lengths).
    pub bytes: u64,
    /// Punt-ring entries by reason.
    pub punts: PuntCounts,
    /// Requests that ended other than [`Status::Ok`].
    pub errors: u64,
    /// Requests by how they ended.
    pub statuses: StatusCounts,
    /// Ring-protocol violations (bad chains): the queue's error state on the CPU path.
    pub broken: u64,
    /// Worker panics while serving this queue (each failed one request).
    pub worker_panics: u64,
    /// Interrupts the CPU raised for this queue (CPU-owned queues).
    pub interrupts: u64,
    /// Requests a runtime that died left in flight, served again after a restart
    /// (`Runtime::resubmit_in_flight`; also counted in `requests`).
    pub resubmitted: u64,
    /// The device's error state of an FPGA-owned queue (see `Runtime::refresh_device_state`).
    #[serde(serialize_with = "display")]
    pub device_error: Option<DeviceQueueError>,
    /// Why the queue last stopped on the CPU path.
    #[serde(serialize_with = "display")]
    pub last_error: Option<CpuQueueError>,
    /// Dispatch-to-completion latency on the CPU.
    pub latency: Histogram,
}

impl QueueStats {
    pub(crate) fn record(&mut self, status: Status, used_len: u32, ns: u64) {
        self.requests += 1;
        self.bytes += u64::from(used_len);
        self.statuses.count(status);
        if status != Status::Ok {
            self.errors += 1;
        }
        self.latency.record(ns);
    }

    /// The queue's error state as the runtime last saw it (the device's, else the CPU path's).
    pub fn error(&self) -> Option<String> {
        self.device_error
            .map(|e| e.to_string())
            .or_else(|| self.last_error.as_ref().map(ToString::to_string))
    }
}

/// The runtime's statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub queues: BTreeMap<u16, QueueStats>,
    /// Queue paths as assigned.
    pub paths: BTreeMap<u16, Path>,
    /// Punt-ring entries read (requests and doorbell events).
    pub punt_entries: u64,
    /// Completion-ring entries written.
    pub completions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        for ns in [10, 100, 100, 100, 5000] {
            h.record(ns);
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.quantile(0.5), Some(128));
        assert_eq!(h.quantile(0.99), Some(8192));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn punts_count_by_reason_and_name_on_output() {
        let mut p = PuntCounts::default();
        for raw in [1u32, 2, 2, 7, 200] {
            p.count(PuntReason::from_raw(raw));
        }
        assert_eq!(p.get(PuntReason::BlkFlush), 2);
        assert_eq!(p.unknown, 1);
        assert_eq!(p.requests(), 4);
        let json = toml::to_string(&Wrap { p }).unwrap();
        assert!(json.contains("blk_flush = 2"), "{json}");
        assert!(json.contains("unknown = 1"), "{json}");
    }

    #[derive(serde::Serialize)]
    struct Wrap {
        p: PuntCounts,
    }
}
