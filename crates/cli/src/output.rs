//! How commands print what they found: `-o table` (for people, the default), `-o json` or
//! `-o yaml` (for programs: the same value, whole). One flag for every command that prints
//! objects, so scripts can rely on it.
use serde::Serialize;

/// The output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Text for people.
    #[default]
    Table,
    /// The value as pretty JSON.
    Json,
    /// The value as YAML.
    Yaml,
}

/// `-o FORMAT`, with `-j` kept as the old spelling of `-o json`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub(crate) struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Format,
    /// The same as `-o json`.
    #[arg(short = 'j', long = "json", conflicts_with = "output")]
    json: bool,
}

impl OutputArgs {
    /// The format asked for.
    pub(crate) fn format(&self) -> Format {
        if self.json { Format::Json } else { self.output }
    }
}

/// Prints `value` as `format` asks; for [`Format::Table`], `table` prints it for people.
pub(crate) fn emit<T: Serialize>(format: Format, value: &T, table: impl FnOnce()) -> anyhow::Result<()> {
    match format {
        Format::Table => table(),
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Yaml => print!("{}", serde_saphyr::to_string(value)?),
    }
    Ok(())
}
