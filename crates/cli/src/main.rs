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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// OpenFlow 1.5 client with ovs-ofctl's commands and output formats.
    Ofctl(ofctl::Args),
    /// OVSDB client: show, ensure the bridge, add and delete ports, monitor interfaces.
    Ovs(ovs::Args),
    /// The node agent: keeps the bridge's flows true to the cluster view.
    Agent(agent_cmd::Args),
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ofctl(args) => ofctl::run(args).await,
            Command::Ovs(args) => ovs::run(args).await,
            Command::Agent(args) => agent_cmd::run(args).await,
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
            eprintln!("weir: {e:#}");
            ExitCode::FAILURE
        }
    }
}
