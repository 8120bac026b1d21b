//! A progress bar on stderr for `init`: count, rate and time left, redrawn a few times a
//! second, shown only once a phase has run for a moment (a small cluster never sees it) and
//! only when stderr is a terminal. The library reports through [`Progress`]; this is the only
//! terminal code.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kubepki::{operations::init::InitPhase, operations::init::Progress};

/// Nothing is drawn before a phase has run this long.
const DELAY: Duration = Duration::from_millis(300);
/// Redraw at most this often.
const EVERY: Duration = Duration::from_millis(100);
/// Cells of the bar itself.
const WIDTH: usize = 24;

/// The bar.
pub(crate) struct Bar {
    done: AtomicU64,
    total: AtomicU64,
    state: Mutex<State>,
}

struct State {
    phase: InitPhase,
    start: Instant,
    last: Option<Instant>,
}

impl Bar {
    pub(crate) fn new() -> Bar {
        let state = State { phase: InitPhase::Survey, start: Instant::now(), last: None };
        Bar { done: AtomicU64::new(0), total: AtomicU64::new(0), state: Mutex::new(state) }
    }

    fn draw(&self, state: &mut State, now: Instant) {
        let (done, total) = (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed));
        let line = line(state.phase, done, total, now - state.start);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
        state.last = Some(now);
    }
}

impl Progress for Bar {
    fn start(&self, phase: InitPhase, total: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        *state = State { phase, start: Instant::now(), last: state.last };
    }

    fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        // Whoever holds the lock draws; the others go on with their work.
        let Ok(mut state) = self.state.try_lock() else { return };
        let now = Instant::now();
        let due = state.last.is_none_or(|t| now - t >= EVERY);
        if due && now - state.start >= DELAY {
            self.draw(&mut state, now);
        }
    }

    fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.last.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// `generating  1234/2017 [##############..........]  617/s  1s left`
fn line(phase: InitPhase, done: u64, total: u64, elapsed: Duration) -> String {
    let what = match phase {
        InitPhase::Survey => "checking  ",
        InitPhase::Generate => "generating",
    };
    let done = done.min(total);
    let filled = if total == 0 { WIDTH } else { (done as usize * WIDTH) / total as usize };
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH - filled));
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let left = if rate > 0.0 { format!("{} left", clock((total - done) as f64 / rate)) } else { "--".into() };
    format!("{what} {done:>w$}/{total} [{bar}] {rate:>6.0}/s  {left}", w = total.to_string().len())
}

/// `45s`, `3m05s`, `1h02m`.
fn clock(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_has_count_bar_rate_and_time_left() {
        let l = line(InitPhase::Generate, 500, 2000, Duration::from_secs(2));
        assert_eq!(l, "generating  500/2000 [######..................]    250/s  6s left");
        let l = line(InitPhase::Survey, 0, 10, Duration::ZERO);
        assert!(l.starts_with("checking    0/10 [........................]"), "{l}");
        assert!(l.ends_with("--"), "{l}");
        assert_eq!(clock(59.2), "1m00s");
        assert_eq!(clock(185.0), "3m05s");
        assert_eq!(clock(3720.0), "1h02m");
    }
}
