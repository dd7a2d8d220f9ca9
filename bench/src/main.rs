//! lease-bench: every figure of liblease that users choose by, each beside its baseline, in one
//! run.
//!
//! `cargo run --release -p lease-bench -- [--quick] [--out DIR] [--only 3,4]` runs the scenarios,
//! prints one table, and writes `DIR/results.json` and SVG plots beside it. The program reports;
//! it never asserts a time.
//!
//! The parts:
//! - `scenarios/`: one file per group of scenarios, each returning its [`report::Section`];
//! - `baselines/`: what people use today, written here from its description: the predecessor's
//!   lock, plain SQLite writers, the application-services writer design, the bare lease statement;
//! - `worker`: the hidden `worker` subcommand, the other processes of the multi-process scenarios
//!   (this same binary, re-executed); `child` spawns and reaps them;
//! - `report`, `plot`, `machine`: the table, the JSON, the plots, and what they ran on;
//! - `stats`, `clock`, `rng`, `procfs`, `wal`: measuring.

mod baselines;
mod child;
mod clock;
mod contender;
mod machine;
mod plot;
mod procfs;
mod report;
mod rng;
mod scenarios;
mod stats;
mod wal;
mod worker;
mod writers;

use std::path::PathBuf;
use std::time::Instant;

use report::Section;

/// Errors of the benchmark's own machinery; a failed measurement is reported in the table.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What the whole run was asked for.
#[derive(Debug, Clone)]
pub struct Config {
    /// A few-second run of every code path, for CI; its figures are not meant to be read.
    pub quick: bool,
    pub out: PathBuf,
    /// Scenario numbers to run; all when empty.
    pub only: Vec<u32>,
}

impl Config {
    /// `full` in a normal run, `quick` in a quick one.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// A scenario group: its number and title (for progress), and how to run it.
struct Scenario {
    number: u32,
    title: &'static str,
    run: fn(&Config, &mut Vec<plot::Plot>) -> Section,
}

const SCENARIOS: &[Scenario] = &[
    Scenario { number: 1, title: "uncontended acquire + release", run: scenarios::lock_ops::uncontended },
    Scenario { number: 2, title: "re-entrant acquire + release", run: scenarios::lock_ops::reentrant },
    Scenario { number: 3, title: "handover between two processes", run: scenarios::handover::run },
    Scenario { number: 4, title: "failover after SIGKILL and SIGSTOP", run: scenarios::failover::run },
    Scenario { number: 5, title: "heartbeat of an idle lease", run: scenarios::heartbeat::run },
    Scenario { number: 6, title: "writers in one process", run: scenarios::writers_local::run },
    Scenario { number: 7, title: "writers across processes", run: scenarios::writers_across::run },
    Scenario { number: 8, title: "footprint", run: scenarios::footprint::run },
    Scenario {
        number: 9,
        title: "a plain-SQLite writer beside a chunked job",
        run: scenarios::plain_writer::run,
    },
    Scenario { number: 10, title: "suspension", run: scenarios::suspension::run },
    Scenario { number: 11, title: "change notification", run: scenarios::changes::run },
    Scenario { number: 12, title: "cost of a small write", run: scenarios::write_cost::run },
    Scenario { number: 13, title: "processes contending for one key", run: scenarios::contention::run },
];

const USAGE: &str = "\
usage: lease-bench [--quick] [--out DIR] [--only N[,N...]]

Runs liblease's benchmark scenarios, each beside its baseline, prints one table, and writes
DIR/results.json and SVG plots (default DIR: bench-results).

  --quick      a few-second run of every scenario (for CI; its figures are not meant to be read)
  --out DIR    where results.json and the plots go
  --only N,..  run only these scenarios (numbers as in the table)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(worker::SUBCOMMAND) {
        std::process::exit(worker::main(&args[1..]));
    }
    let config = match parse_args(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&config) {
        eprintln!("lease-bench: {e}");
        std::process::exit(1);
    }
}

fn parse_args(args: &[String]) -> std::result::Result<Config, String> {
    let mut config = Config { quick: false, out: PathBuf::from("bench-results"), only: Vec::new() };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => config.quick = true,
            "--out" => config.out = args.next().ok_or("--out needs a directory")?.into(),
            "--only" => {
                let list = args.next().ok_or("--only needs scenario numbers")?;
                for number in list.split(',') {
                    let number: u32 =
                        number.trim().parse().map_err(|_| format!("not a scenario: {number}"))?;
                    if !SCENARIOS.iter().any(|s| s.number == number) {
                        return Err(format!("no scenario {number}"));
                    }
                    config.only.push(number);
                }
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(config)
}

fn run(config: &Config) -> Result<()> {
    let new_directory = !config.out.exists();
    std::fs::create_dir_all(&config.out)
        .map_err(|e| format!("cannot create {}: {e}", config.out.display()))?;
    if new_directory {
        // Results are never committed: a directory made here ignores itself.
        std::fs::write(config.out.join(".gitignore"), "*\n")?;
    }
    let machine = machine::Machine::describe();
    let started = Instant::now();
    let mut sections = Vec::new();
    let mut plots = Vec::new();
    let selected = SCENARIOS.iter().filter(|s| config.only.is_empty() || config.only.contains(&s.number));
    for scenario in selected {
        eprintln!("lease-bench: {}. {} ...", scenario.number, scenario.title);
        let began = Instant::now();
        sections.push((scenario.run)(config, &mut plots));
        eprintln!("lease-bench: {}. done in {:.1} s", scenario.number, began.elapsed().as_secs_f64());
    }
    let elapsed = started.elapsed();

    print!("{}", report::table(&sections));
    let results = config.out.join("results.json");
    report::write_json(&results, config, &machine, elapsed, &sections)?;
    let mut written = vec![results];
    for plot in &plots {
        let path = config.out.join(&plot.file);
        match plot.draw(&path) {
            Ok(()) => written.push(path),
            Err(e) => eprintln!("lease-bench: could not draw {}: {e}", path.display()),
        }
    }
    println!();
    println!("{}", machine.summary());
    println!(
        "{} run in {:.1} s; wrote {}",
        if config.quick { "quick" } else { "full" },
        elapsed.as_secs_f64(),
        written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
