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

#[test]
fn defect_10_a_wrong_type_is_explained_in_a_users_words() {
    let dir = common::TempDir::new("types");
    let text = "name = \"x\"\nconcept = \"y\"\n[producers.p]\ntarget = \"b\"\narrival = { process = \"poisson\", rate_per_s = \"fast\" }\nmessages = -3\n[brokers.b]\nkind = \"queue\"\n";
    let file = dir.write("s.toml", text);
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rate_per_s") && stderr.contains("expected a number"), "{stderr}");
    assert!(!stderr.contains("f64"), "no Rust type names: {stderr}");
    let file = dir.write("t.toml", &text.replace("\"fast\"", "5"));
    let stderr = String::from_utf8_lossy(&asyncsim(&["validate", file.to_str().unwrap()]).stderr).to_string();
    assert!(stderr.contains("messages") && stderr.contains("a whole number (0 or more)"), "{stderr}");
    assert!(!stderr.contains("u64"), "no Rust type names: {stderr}");
}
