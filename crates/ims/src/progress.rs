//! Progress bars for the CLI commands that move data (`ims bucket put|get`,
//! `ims convert`): bytes done, rate and time left on stderr, as glanceclient's
//! `--progress` shows them. Only on a terminal: with `--quiet`, or when stderr is a file
//! or a pipe (scripts, CI logs), nothing is drawn.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A transfer's bar; hidden when nobody is watching.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `total` bytes (`None`: unknown, a spinner with the count and rate),
    /// labelled `label`; drawn only when `visible` (see [`shown`]).
    pub fn bytes(label: &str, total: Option<u64>, visible: bool) -> Self {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_draw_target(if visible {
            // At most 5 redraws a second: a terminal is not a log.
            ProgressDrawTarget::stderr_with_hz(5)
        } else {
            ProgressDrawTarget::hidden()
        });
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// `n` more bytes done.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Done up to `position` bytes.
    pub fn set(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// Leaves the bar at its end on the screen.
    pub fn finish(&self) {
        self.bar.finish();
    }

    /// Removes the bar (the command failed; its error follows).
    pub fn abandon(&self) {
        self.bar.abandon();
    }
}

/// Whether a bar is drawn: stderr is a terminal and `--quiet` was not given.
pub fn shown(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}
