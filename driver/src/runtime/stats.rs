//! Per-queue statistics of the runtime (the CPU side; the FPGA's own counters are read from the
//! counters block).

use super::split::Path;
use crate::blk::Status;
use std::collections::BTreeMap;

/// Latency histogram with power-of-two buckets in nanoseconds (bucket i: < 2^(i+6) ns).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Histogram {
    pub buckets: Vec<u64>,
}

impl Histogram {
    const BUCKETS: usize = 24;

    pub fn record(&mut self, ns: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; Self::BUCKETS];
        }
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

/// One queue's CPU-side counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Requests the CPU completed for this queue (served CPU-owned or punted).
    pub requests: u64,
    /// Bytes written into guest buffers (used lengths).
    pub bytes: u64,
    /// Punted requests by reason name.
    pub punts: BTreeMap<String, u64>,
    /// Requests that ended with a status other than OK, or without a status.
    pub errors: u64,
    /// Requests by final status.
    pub statuses: BTreeMap<String, u64>,
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
    pub device_error: Option<String>,
    /// Why the queue last stopped on the CPU path.
    pub last_error: Option<String>,
    /// Dispatch-to-completion latency on the CPU.
    pub latency: Histogram,
}

impl QueueStats {
    pub(crate) fn record(&mut self, status: Option<Status>, used_len: u32, ns: u64) {
        self.requests += 1;
        self.bytes += u64::from(used_len);
        let name = match status {
            Some(Status::Ok) => "ok",
            Some(Status::IoErr) => "ioerr",
            Some(Status::Unsupp) => "unsupp",
            None => "none",
        };
        *self.statuses.entry(name.into()).or_default() += 1;
        if status != Some(Status::Ok) {
            self.errors += 1;
        }
        self.latency.record(ns);
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
}
