//! Repeated timings and their summary: medians (robust on a noisy machine), min and max.

use std::time::Duration;

/// The result column for a goal: "pass" or "FAIL"; in a quick run (`cargo xtask test` runs
/// every benchmark at small sizes, once, in a debug build, so that none can rot) the figures say
/// nothing about the goal, and the column says so.
pub fn verdict(pass: bool) -> &'static str {
    if std::env::var_os("DERMDESK_BENCH_QUICK").is_some() {
        "not judged (quick run)"
    } else if pass {
        "pass"
    } else {
        "FAIL"
    }
}

/// The timings of one measured thing, one per repetition.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    seconds: Vec<f64>,
}

impl Samples {
    pub fn push(&mut self, elapsed: Duration) {
        self.seconds.push(elapsed.as_secs_f64());
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The middle value (the mean of the two middle ones for an even count).
    pub fn median(&self) -> f64 {
        let sorted = self.sorted();
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// Every timing in seconds, in the order measured.
    pub fn all(&self) -> &[f64] {
        &self.seconds
    }

    /// Median, min, max and all timings, in seconds, for the JSON report.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "median_s": self.median(),
            "min_s": self.min(),
            "max_s": self.max(),
            "samples_s": self.all(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(seconds: &[f64]) -> Samples {
        Samples { seconds: seconds.to_vec() }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(samples(&[3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(samples(&[4.0, 1.0, 3.0, 2.0]).median(), 2.5);
        assert_eq!(samples(&[4.0, 1.0, 3.0, 2.0]).min(), 1.0);
        assert_eq!(samples(&[4.0, 1.0, 3.0, 2.0]).max(), 4.0);
        assert!(samples(&[]).median().is_nan());
    }
}
