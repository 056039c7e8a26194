//! The report formats: readable text, JSON, SARIF 2.1.0 and JUnit XML.

use std::io::{self, Write};

use crate::scan::Report;

pub mod json;
pub mod junit;
pub mod sarif;
pub mod text;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
}

/// What a report needs to know besides the scan.
pub struct Context<'a> {
    /// `--strict`: changes and warnings fail too.
    pub strict: bool,
    /// Notes about the run (settings scan changed), for the formats that carry them.
    pub notes: &'a [String],
}

pub fn write(
    format: Format,
    report: &Report,
    context: &Context<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Text => text::write(report, context, out),
        Format::Json => json::write(report, context, out),
        Format::Sarif => sarif::write(report, context, out),
        Format::Junit => junit::write(report, context, out),
    }
}
