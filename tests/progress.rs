//! The progress bar: drawn on a terminal, never into a file or a pipe.
//! `ASYNCSIM_PROGRESS_AFTER_MS=0` shows it from the start, so that a short
//! run would show it too if it were ever shown off a terminal.

use crate::common;

use common::{bin, repo, TempDir};
use std::process::{Command, Output, Stdio};

/// What the bar writes: carriage returns, escape sequences, its words.
fn has_bar_bytes(text: &str) -> bool {
    text.contains('\r') || text.contains('\x1b') || text.contains("ETA") || text.contains("events/s")
}

/// Runs `mm1.toml` (a million messages: long enough for the bar's thread
/// to draw at least once even on a busy machine) into `out`.
fn run_args(out: &TempDir) -> Vec<String> {
    let out = out.path().display().to_string();
    ["run", "scenarios/mm1.toml", "--out", &out, "--force"].map(String::from).to_vec()
}

#[test]
fn a_run_whose_stderr_is_not_a_terminal_prints_no_progress() {
    let dir = TempDir::new("progress-pipe");
    let out = Command::new(bin())
        .args(run_args(&dir))
        .env("ASYNCSIM_PROGRESS_AFTER_MS", "0")
        .current_dir(repo())
        .output()
        .expect("run asyncsim");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("wrote "), "the run ran: {stdout}");
    assert!(!has_bar_bytes(&stderr), "no bar on a pipe: {stderr:?}");
    assert!(!has_bar_bytes(&stdout), "nor on stdout: {stdout:?}");
}

/// Runs `asyncsim ARGS` on a pseudo-terminal (with `script`), returning
/// what the terminal received, or `None` where `script` cannot run.
fn on_a_terminal(args: &[String]) -> Option<Output> {
    let mut cmd = bin().to_string();
    for a in args {
        cmd.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("ASYNCSIM_PROGRESS_AFTER_MS", "0")
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .ok()?;
    // `script` itself failing (no pseudo-terminals here) prints nothing of ours.
    String::from_utf8_lossy(&out.stdout).contains("wrote ").then_some(out)
}

#[test]
fn on_a_terminal_the_bar_is_drawn_and_no_progress_turns_it_off() {
    let dir = TempDir::new("progress-pty");
    let Some(shown) = on_a_terminal(&run_args(&dir)) else {
        eprintln!("skipped: `script` cannot give asyncsim a terminal here");
        return;
    };
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("mm1 [") && text.contains("ETA"), "a bar was drawn: {text:?}");
    assert!(text.contains("\r\x1b[2K"), "and cleared: {text:?}");
    let mut quiet = run_args(&dir);
    quiet.push("--no-progress".into());
    let hidden = on_a_terminal(&quiet).expect("script ran before");
    let text = String::from_utf8_lossy(&hidden.stdout);
    assert!(!text.contains("ETA") && !text.contains('\x1b'), "no bar with --no-progress: {text:?}");
}
