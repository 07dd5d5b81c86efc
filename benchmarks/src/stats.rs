//! Latency samples and exact percentiles.

use std::time::Duration;

/// Latencies of one operation, in nanoseconds.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    nanos: Vec<u64>,
    sorted: bool,
}

impl Samples {
    pub fn new() -> Samples {
        Samples::default()
    }

    pub fn record(&mut self, elapsed: Duration) {
        self.nanos
            .push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    pub fn extend(&mut self, other: &Samples) {
        self.nanos.extend_from_slice(&other.nanos);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
    }

    /// The nearest-rank percentile `p` (0–100), or None without samples.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        self.sort();
        if self.nanos.is_empty() {
            return None;
        }
        let n = self.nanos.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let index = rank.clamp(1, n) - 1;
        self.nanos
            .get(index)
            .map(|nanos| Duration::from_nanos(*nanos))
    }

    pub fn max(&mut self) -> Option<Duration> {
        self.percentile(100.0)
    }

    pub fn mean(&self) -> Option<Duration> {
        if self.nanos.is_empty() {
            return None;
        }
        let sum: u128 = self.nanos.iter().map(|n| u128::from(*n)).sum();
        u64::try_from(sum / self.nanos.len() as u128)
            .ok()
            .map(Duration::from_nanos)
    }
}

/// Milliseconds with three decimals, or `-`.
pub fn ms(duration: Option<Duration>) -> String {
    duration
        .map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".to_owned())
}

/// Microseconds with one decimal, or `-`.
pub fn us(duration: Option<Duration>) -> String {
    duration
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1e6))
        .unwrap_or_else(|| "-".to_owned())
}

/// The header of a latency table in milliseconds.
pub fn ms_table_header(what: &str) -> String {
    format!(
        "  {what:<28} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "count", "p50 ms", "p95 ms", "p99 ms", "max ms"
    )
}

/// One row of a latency table in milliseconds.
pub fn ms_table_row(name: &str, samples: &mut Samples) -> String {
    format!(
        "  {name:<28} {:>8} {:>9} {:>9} {:>9} {:>9}",
        samples.len(),
        ms(samples.percentile(50.0)),
        ms(samples.percentile(95.0)),
        ms(samples.percentile(99.0)),
        ms(samples.max())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples = Samples::new();
        assert_eq!(samples.percentile(50.0), None);
        for i in 1..=100u64 {
            samples.record(Duration::from_millis(i));
        }
        assert_eq!(samples.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(samples.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(samples.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(samples.percentile(0.0), Some(Duration::from_millis(1)));
        assert_eq!(samples.mean(), Some(Duration::from_micros(50_500)));
    }
}
