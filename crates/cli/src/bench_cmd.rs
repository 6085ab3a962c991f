//! `weir bench NAME`: benchmarks, each against a baseline measured in the same run and
//! reported as a ratio (absolute times on this machine are noisy).

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(clap::Subcommand)]
enum Bench {}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    match args.bench {}
}
