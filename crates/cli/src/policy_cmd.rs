//! (owned by its issue's work; being built)

#[derive(clap::Args)]
pub(crate) struct Args {}

pub(crate) async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
