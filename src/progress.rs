//! A minimal progress line on stderr for long work (recording, training, embeddings).
//!
//! It redraws at most five times a second, shows done/total, rate and time left, and stays
//! silent when `NEUROSCOPE_QUIET` is set (tests, CI logs).

use std::io::Write;
use std::time::{Duration, Instant};

/// A progress line.
///
/// ```
/// let mut p = neuroscope::progress::Progress::new("work", 10);
/// p.inc(5);
/// p.finish();
/// ```
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    start: Instant,
    last: Option<Instant>,
    quiet: bool,
    message: String,
}

impl Progress {
    /// A progress line for `total` units of work.
    pub fn new(label: impl Into<String>, total: usize) -> Self {
        Progress {
            label: label.into(),
            total,
            done: 0,
            start: Instant::now(),
            last: None,
            quiet: std::env::var_os("NEUROSCOPE_QUIET").is_some(),
            message: String::new(),
        }
    }

    /// Records `n` more units done.
    pub fn inc(&mut self, n: usize) {
        self.done += n;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now - t > Duration::from_millis(200))
            || self.done >= self.total
        {
            self.last = Some(now);
            self.draw(false);
        }
    }

    /// A short status shown after the counts (a running loss, a KL divergence).
    pub fn set_message(&mut self, msg: impl Into<String>) {
        self.message = msg.into();
    }

    /// Draws the final line.
    pub fn finish(&mut self) {
        self.draw(true);
    }

    fn draw(&self, last: bool) {
        if self.quiet {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let rate = self.done as f64 / secs.max(1e-9);
        let frac = if self.total > 0 {
            self.done as f64 / self.total as f64
        } else {
            1.0
        };
        let width = 24;
        let filled = ((frac * width as f64) as usize).min(width);
        let left = if rate > 0.0 {
            (self.total.saturating_sub(self.done)) as f64 / rate
        } else {
            0.0
        };
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{} [{}{}] {}/{} {:.1}/s {:.1}s elapsed {}{}",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.done,
            self.total,
            rate,
            secs,
            self.message,
            if last {
                "\n".to_string()
            } else {
                format!(", ~{left:.0}s left  ")
            }
        );
        let _ = err.flush();
    }
}
