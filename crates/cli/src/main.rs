//! `weir`: one binary for the agent, the OpenFlow and OVSDB clients, the compiler, the
//! policy oracle, the testbed and the benchmarks. Thin: each subcommand parses its arguments
//! and calls the crates that do the work.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod agent_cmd;
mod bench_cmd;
mod compile_cmd;
mod get_cmd;
mod ofctl;
mod output;
mod ovs;
mod policy_cmd;
mod testbed_cmd;
mod trace_cmd;

#[derive(Parser)]
#[command(name = "weir", version, about = "OpenFlow 1.5 policy controller for Open vSwitch")]
struct Cli {
    /// Log format on stderr: `text`, or `json` (one JSON object a line). What is logged is set
    /// by the WEIR_LOG environment variable, as tracing's EnvFilter reads it (e.g. `info`,
    /// `warn,agent=debug`; default `warn`).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line (timestamp, level, fields, target).
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// OpenFlow 1.5 client with ovs-ofctl's commands and output formats.
    Ofctl(ofctl::Args),
    /// OVSDB client: show, ensure the bridge, add and delete ports, monitor interfaces.
    Ovs(ovs::Args),
    /// The node agent: keeps the bridge's flows true to the cluster view.
    Agent(Box<agent_cmd::Args>),
    /// Emulated multi-node cluster in network namespaces on this host.
    Testbed(testbed_cmd::Args),
    /// The node's desired flows as ovs-ofctl text, compiled from manifests without a switch.
    Compile(compile_cmd::CompileArgs),
    /// Why a packet is allowed or denied: the oracle's rule, and on a live node the switch's trace.
    Trace(trace_cmd::Args),
    /// What an agent has realized: generation, objects, errors, flows per table.
    Status(compile_cmd::StatusArgs),
    /// A live node's flows of a pod or a policy, and per-rule counters.
    Get(get_cmd::Args),
    /// Regenerate pipeline-docs/ from the table declaration and a flow dump.
    PipelineDocs(compile_cmd::DocsArgs),
    /// Benchmarks, each reported as a ratio against a baseline measured in the same run.
    Bench(bench_cmd::Args),
    /// The reference evaluator: verdicts, truth tables and conformance cases without a switch.
    Policy(policy_cmd::Args),
}

fn main() -> ExitCode {
    // Output piped into a reader that stops early (`weir status | head`) ends the program
    // quietly, as it does every Unix tool, instead of a panic in `println!` on EPIPE.
    // SAFETY: called before any thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ofctl(args) => ofctl::run(args).await,
            Command::Ovs(args) => ovs::run(args).await,
            Command::Agent(args) => agent_cmd::run(*args).await,
            Command::Testbed(args) => testbed_cmd::run(args).await,
            Command::Policy(args) => policy_cmd::run(args).await,
            Command::Bench(args) => bench_cmd::run(args).await,
            Command::Compile(args) => compile_cmd::compile(args).await,
            Command::Trace(args) => trace_cmd::run(args).await,
            Command::Status(args) => compile_cmd::status(args).await,
            Command::Get(args) => get_cmd::run(args).await,
            Command::PipelineDocs(args) => compile_cmd::docs(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, each said once: a cause whose text its context
/// already carries (a wrapper that prints its source, e.g. `connecting: No such file or
/// directory (os error 2)`) is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument and subcommand of `cmd` and below without help text, as `path: name`.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path}: {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                out.push(format!("{sub_path}: (the subcommand)"));
            }
            undocumented(sub, &sub_path, out);
        }
    }

    #[test]
    fn an_os_error_wrapped_twice_is_said_once() {
        // A wrapper whose text carries its source's, as ovsdb's I/O error does.
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(io).context("OVSDB I/O error: unix:/x: No such file or directory (os error 2)").context("connecting");
        assert_eq!(super::error_text(&e), "connecting: OVSDB I/O error: unix:/x: No such file or directory (os error 2)");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::error_text(&plain), "outer: inner");
    }

    #[test]
    fn every_argument_and_subcommand_has_help_text() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "weir", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
    }

    /// The README's CLI block: the code block after `## The CLI`.
    fn readme_cli() -> String {
        let readme = include_str!("../../../README.md");
        let section = readme.split("## The CLI").nth(1).expect("a CLI section");
        section.split("```").nth(1).expect("a code block in the CLI section").to_string()
    }

    #[test]
    fn the_readme_names_every_subcommand_and_every_option_of_the_agent_and_get() {
        let block = readme_cli();
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            if !block.contains(&format!("weir {}", sub.get_name())) {
                missing.push(format!("weir {}", sub.get_name()));
            }
        }
        for global in cli.get_arguments().filter_map(|a| a.get_long()).filter(|l| !matches!(*l, "help" | "version")) {
            if !block.contains(&format!("--{global}")) {
                missing.push(format!("weir --{global}"));
            }
        }
        let mut options = |cmd: &clap::Command, path: &str| {
            for arg in cmd.get_arguments().filter(|a| !a.is_global_set()) {
                let short = arg.get_short().map(|c| format!("-{c} "));
                if let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version"))
                    && !block.contains(&format!("--{long}"))
                    && !short.is_some_and(|s| block.contains(&s))
                {
                    missing.push(format!("{path} --{long}"));
                }
            }
        };
        for name in ["agent", "status", "trace", "compile", "pipeline-docs", "bench"] {
            options(cli.find_subcommand(name).unwrap(), &format!("weir {name}"));
        }
        for name in ["eval", "explain", "conformance"] {
            options(cli.find_subcommand("policy").unwrap().find_subcommand(name).unwrap(), &format!("weir policy {name}"));
        }

        for name in ["flows", "stats"] {
            options(cli.find_subcommand("get").unwrap().find_subcommand(name).unwrap(), &format!("weir get {name}"));
        }
        assert!(missing.is_empty(), "the README's CLI section lacks:\n{}", missing.join("\n"));
    }
}
