//! Command-line arguments that make no sense are refused before any work,
//! with exit 2 and a message that names the argument (issue 8, defect 10).

use crate::common;

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

/// Runs `validate` on `path` and waits at most 20 s: an input that makes
/// asyncsim read forever fails the test instead of hanging it.
fn validate_bounded(path: &std::path::Path) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(common::bin())
        .args(["validate", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start asyncsim");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().ok();
            panic!("validate {} did not finish in 20 s", path.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn defect_9_inputs_that_are_not_scenario_files_are_refused_at_once() {
    let dir = common::TempDir::new("inputs");
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; 17 * 1024 * 1024]).unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [b'n', b'a', 0xff, 0xfe, b'\n']).unwrap();
    let cases: [(&std::path::Path, &str); 6] = [
        (std::path::Path::new("/dev/zero"), "not a regular file"),
        (std::path::Path::new("/dev/urandom"), "not a regular file"),
        (&fifo, "not a regular file"),
        (dir.path(), "a folder"),
        (&big, "read up to 16 MiB"),
        (&binary, "not UTF-8"),
    ];
    for (path, why) in cases {
        let (code, stderr) = validate_bounded(path);
        assert_eq!(code, Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains(why), "{}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn defect_7_an_output_folder_that_cannot_be_written_fails_before_simulating() {
    // Root can write anywhere a mode allows, so use a place nobody can
    // create a folder in: /proc. Ten million messages would take seconds to
    // simulate; the refusal must come first.
    let start = std::time::Instant::now();
    let o = asyncsim(&[
        "run",
        "scenarios/mm1.toml",
        "--set",
        "producers.producer.messages=10000000",
        "--out",
        "/proc/asyncsim-nowhere",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "refused only after {:?}: {stderr}", start.elapsed());
}

/// A scenario ending at 1 s with `faults` crash faults due after it.
fn late_faults(faults: usize) -> String {
    let mut text = String::from(
        "name = \"late\"\nconcept = \"faults due after the run\"\nrun = { duration_ms = 1000 }\n[producers.p]\ntarget = \"b\"\narrival = { process = \"constant\", rate_per_s = 10 }\n[brokers.b]\nkind = \"queue\"\n[consumers.c]\nsource = \"b\"\nprocessing = { dist = \"constant\", ms = 1 }\n",
    );
    for k in 0..faults {
        text.push_str(&format!("[[faults]]\nkind = \"crash\"\nnode = \"c\"\nat_ms = {}\n", 5000 + k));
    }
    text
}

#[test]
fn defect_10_notes_go_to_stderr_and_repeats_are_summarised() {
    let dir = common::TempDir::new("notes");
    let file = dir.write("late.toml", &late_faults(500));
    let out = dir.path().join("out");
    let o = asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(!stdout.contains("note:"), "notes are not results: {stdout}");
    assert_eq!(stderr.matches("never happened").count(), 3, "{stderr}");
    assert!(stderr.contains("... and 497 more like this"), "{stderr}");
}

#[test]
fn defect_10_a_node_on_both_sides_of_a_partition_is_refused() {
    let dir = common::TempDir::new("partition");
    let text =
        late_faults(0) + "[[faults]]\nkind = \"partition\"\nat_ms = 10\ngroups = [[\"p\", \"b\"], [\"c\", \"b\"]]\n";
    let file = dir.write("p.toml", &text);
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("faults.0.groups") && stderr.contains("`b` is named twice"), "{stderr}");
}

#[test]
fn defect_10_an_unknown_field_gets_a_did_you_mean() {
    let dir = common::TempDir::new("did-you-mean");
    let text = late_faults(0).replace("processing = {", "procesing = {");
    let file = dir.write("typo.toml", &text);
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("consumers.c.procesing") && stderr.contains("did you mean `processing`?"), "{stderr}");
    // A top-level key goes before the first table.
    let file = dir.write("top.toml", &format!("netwrok = {{}}\n{}", text.replace("procesing", "processing")));
    let stderr = String::from_utf8_lossy(&asyncsim(&["validate", file.to_str().unwrap()]).stderr).into_owned();
    assert!(stderr.contains("did you mean `network`?"), "{stderr}");
}

/// `--set` is validated against the variants `--variant` chose, not the
/// ones it left out: an override that only makes sense for the chosen
/// variant runs, and the same override without `--variant` is refused,
/// naming the variant it does not fit.
#[test]
fn set_is_checked_against_the_chosen_variants_only() {
    let dir = std::env::temp_dir().join(format!("asyncsim-set-variant-{}", std::process::id()));
    let set = "producers.producer.idempotent=true";
    let file = "scenarios/delivery-guarantees.toml";
    let all = asyncsim(&["run", file, "--set", set, "--out", dir.to_str().unwrap(), "--no-progress", "--no-plots"]);
    let stderr = String::from_utf8_lossy(&all.stderr);
    assert_eq!(all.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at-most-once"), "the refusal should name the variant it does not fit: {stderr}");
    let chosen = asyncsim(&[
        "run",
        file,
        "--variant",
        "at-least-once",
        "--set",
        set,
        "--out",
        dir.to_str().unwrap(),
        "--no-progress",
        "--no-plots",
    ]);
    let stderr = String::from_utf8_lossy(&chosen.stderr);
    assert!(matches!(chosen.status.code(), Some(0 | 1)), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary.json")).expect("json");
    let variants = summary["variants"].as_object().expect("variants");
    assert_eq!(variants.keys().collect::<Vec<_>>(), ["at-least-once"]);
    // A field of a cache that only the chosen variant declares.
    let cache = asyncsim(&[
        "run",
        "scenarios/url-shortener.toml",
        "--variant",
        "write-through",
        "--set",
        "producers.api.writes.deletion_markers=true",
        "--out",
        dir.to_str().unwrap(),
        "--no-progress",
        "--no-plots",
    ]);
    let stderr = String::from_utf8_lossy(&cache.stderr);
    assert!(matches!(cache.status.code(), Some(0 | 1)), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
