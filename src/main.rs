//! The asyncsim command line: a thin layer over `sim-core` (the simulation)
//! and `reports` (the files). Exit status: 0 when every expectation held, 1
//! when one failed, 2 for bad input (an unreadable or invalid scenario, a
//! bad argument, an output folder we may not write into), 3 when a run
//! stopped at a limit (events, memory) after writing what it measured.

/// Prints to standard output, ignoring a closed pipe (`asyncsim run ... |
/// head` must not panic): what could not be printed was not wanted.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod bench;
mod chapters;
mod check;
mod compare;
mod diagram;
mod explain;
mod input;
mod list;
mod many;
mod progress;
mod replications;
mod run;
mod sweep;
mod table;
mod trace_json;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A deterministic, seeded simulator of asynchronous messaging systems.
///
/// With no command, runs every bundled scenario and writes each one's
/// output under `out/NAME/`.
#[derive(Parser)]
#[command(name = "asyncsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Show no progress bar. Without it, work that lasts more than about a
    /// second shows one on stderr (simulated time, events per second, time
    /// left), and only when stderr is a terminal.
    #[arg(long, global = true)]
    no_progress: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario's variants and write summary.json and timeseries.csv.
    ///
    /// Exit status: 0 when every expectation held, 1 when one failed, 2 for
    /// bad input, 3 when a run stopped at a limit (run.max_events,
    /// run.max_memory_mb or --max-memory-mb), after writing what it had
    /// measured (summary.json's run.stopped says which).
    Run(run::RunArgs),
    /// Search for fault schedules that violate the scenario's invariants,
    /// and shrink the first one found to a minimal scenario file.
    ///
    /// Exit status: 0 when no run violated an invariant, 1 when one did
    /// (the minimal case is written into --out), 2 for bad input.
    /// `--determinism` runs the older check instead: every variant twice,
    /// reporting the first divergence, if any.
    Check(check::CheckArgs),
    /// Measure the engine: events per second and peak memory, one thread.
    Bench(bench::BenchArgs),
    /// Draw a window of one variant's run as a space-time diagram (SVG).
    Diagram(diagram::DiagramArgs),
    /// Run two sides and print their figures side by side, with differences.
    ///
    /// A side is FILE (every variant, paired by name with the other
    /// file's), FILE:VARIANT, FILE@SEED or FILE:VARIANT@SEED; B may leave
    /// out the file (`:VARIANT`, `@SEED`) to take A's. Writes compare.json
    /// into --out. Exit status: 0 once both sides ran, 2 for bad input, 3
    /// when a run stopped at a limit.
    Compare(compare::CompareArgs),
    /// Join the shards of a `sweep` or `check` run with --shard I/N.
    ///
    /// Reads DIR/partial.json of every shard and writes the same table,
    /// files and exit status as the run on one machine. Refuses (exit 2)
    /// partials of different commands, plans or shard counts, a missing or
    /// repeated shard, and an unreadable file, naming it.
    Merge(many::merge::MergeArgs),
    /// Run a scenario over a range of parameters and many seeds, in
    /// parallel: each point's mean and confidence interval per metric, paired
    /// comparisons of variants (common random numbers), a CSV and a plot.
    ///
    /// `--set PATH=A..B:N` sweeps PATH over N values from A to B. Exit
    /// status: 0 once it ran, 1 when --precision was not met, 2 for bad
    /// input, 3 when a run stopped at a limit.
    Sweep(sweep::SweepArgs),
    /// Run a scenario and explain it in plain words: the concept and its
    /// chapter, what each variant changes, what happened (summary.json's
    /// figures), why (the ledger's causes), and commands to try next.
    ///
    /// `--message ID` tells one message's story instead. Exit status as
    /// `run`: 0 when every expectation held, 1 when one failed, 2 for bad
    /// input (an unknown variant, a message id the run did not produce),
    /// 3 when a run stopped at a limit.
    Explain(explain::ExplainArgs),
    /// List the bundled scenarios by concept: the guide's chapters in
    /// reading order, each with its number, title and file, then its
    /// scenarios with the concept each teaches and their variants.
    List(list::ListArgs),
    /// Check scenario files without running them.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Overrides to check too, as in `run`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.no_progress {
        progress::disable();
    }
    let result = match cli.command {
        None => run::run_bundled(),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Bench(args)) => bench::bench(&args),
        Some(Command::Check(args)) => check::check(&args),
        Some(Command::Diagram(args)) => diagram::diagram(&args),
        Some(Command::Compare(args)) => compare::compare(&args),
        Some(Command::Merge(args)) => many::merge::merge(&args, &[("check", check::finish), ("sweep", sweep::finish)]),
        Some(Command::Sweep(args)) => sweep::sweep(&args),
        Some(Command::Explain(args)) => explain::explain(&args),
        Some(Command::List(args)) => list::list(&args),
        Some(Command::Validate { files, set }) => run::validate(&files, &set),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
