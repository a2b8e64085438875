//! Command-line arguments that make no sense are refused before any work,
//! with exit 2 and a message that names the argument (issue 8, defect 10).

mod common;

use common::asyncsim;

fn refused(args: &[&str], argument: &str) {
    let o = asyncsim(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(argument), "{args:?} should name {argument}: {stderr}");
    assert!(!stderr.contains("--set"), "{args:?} must not blame --set: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn defect_10_threads_0_is_refused() {
    refused(&["run", "scenarios/mm1.toml", "--threads", "0", "--out", "/nonexistent-never-written"], "--threads");
}

#[test]
fn defect_10_bench_messages_0_names_messages_not_set() {
    refused(&["bench", "--messages", "0"], "--messages");
}

#[test]
fn bench_repeat_0_is_refused() {
    refused(&["bench", "--repeat", "0"], "--repeat");
}

#[test]
fn defect_10_an_os_error_is_printed_once() {
    let o = asyncsim(&[
        "run",
        "scenarios/mm1.toml",
        "--set",
        "producers.producer.messages=10",
        "--out",
        "/proc/asyncsim-nowhere",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write /proc/asyncsim-nowhere"), "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "the cause once: {stderr}");
}
