//! A minimal progress line on stderr for long work (recording, training, embeddings), and
//! the stop request that lets such work end early with what it has done.
//!
//! The line redraws at most five times a second, shows done/total, rate and time left, and
//! stays silent when `NEUROSCOPE_QUIET` is set (tests, CI logs).
//!
//! Stopping: [`request_stop`] (or Ctrl-C in the command-line program, see
//! [`stop_on_ctrl_c`]) asks the loop that is running to finish its current step and return
//! a partial result marked `interrupted`: feature visualisation keeps the best image and the
//! history so far, recording keeps the samples of the batches done, t-SNE and UMAP return the
//! current embedding. Training already keeps every finished epoch in its checkpoints.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks the long-running loop in progress to stop after its current step and return what it
/// has so far. The request is consumed by the loop that honours it, so later work runs
/// normally.
///
/// ```
/// use neuroscope::progress::{request_stop, take_stop_request};
/// request_stop();
/// assert!(take_stop_request());   // a loop sees it once...
/// assert!(!take_stop_request());  // ...and it is gone
/// ```
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested since the last call, clearing the request (called by the
/// loops between steps).
///
/// ```
/// assert!(!neuroscope::progress::take_stop_request());
/// ```
pub fn take_stop_request() -> bool {
    STOP.swap(false, Ordering::SeqCst)
}

/// Whether a stop is requested, leaving the request for the next loop to honour too (a
/// preparatory step, such as UMAP's neighbour search, ends early and lets the main loop stop).
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Makes Ctrl-C a stop request (see [`request_stop`]); a second Ctrl-C before the first is
/// honoured quits at once (exit status 130). The command-line program calls it at start.
///
/// ```no_run
/// neuroscope::progress::stop_on_ctrl_c()?;
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[cfg(feature = "cli")]
pub fn stop_on_ctrl_c() -> crate::Result<()> {
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step with what is done (Ctrl-C again to quit now)");
    })
    .map_err(|e| crate::Error::InvalidArgument(format!("cannot catch Ctrl-C: {e}")))
}

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
