//! `explain`: TLS error texts said in plain words, and with `--dir` tied to the tree.

use kubepki::report::explain::{excerpt, text_of};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::verify::{cluster_of, parse_instant};
use super::{emit, Format};
use kubepki::audit::explain::{explain, recognise, TreeView};
use kubepki::audit::verify::{verify, VerifyOptions};
use kubepki::disk::inventory::Inventory;
use kubepki::model::catalog::Catalog;
use kubepki::model::topology::Topology;
use kubepki::{Error, Result};

#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    /// The error text (several words are joined); `-` or nothing with piped input: stdin.
    /// Its first word may start with `-` (a PEM block pasted whole): it is text, not an option.
    /// (Only the first: were every word allowed to, `-o json` after the text would be text.)
    #[arg(value_name = "TEXT", allow_hyphen_values = true)]
    first: Option<String>,
    /// More words of the text.
    #[arg(value_name = "TEXT")]
    rest: Vec<String>,
    /// Read the text from this log file instead.
    #[arg(long, conflicts_with_all = ["first", "rest"])]
    file: Option<PathBuf>,
    /// Tie each error to this tree: the link, the file and certificate at fault, and the fix.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// With --dir: the cluster description; without it the cluster is inferred from the tree.
    #[arg(long, short = 'c', requires = "dir")]
    config: Option<PathBuf>,
    /// With --dir: check the tree at this instant (RFC 3339, or YYYY-MM-DD) instead of now.
    #[arg(long, value_parser = parse_instant, requires = "dir")]
    at: Option<OffsetDateTime>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub(crate) fn run(a: ExplainArgs) -> Result<ExitCode> {
    let (text, source) = input(&a)?;
    let messages = recognise(&text);
    if messages.is_empty() {
        let problem = "no TLS error message kubepki recognises (Go crypto/x509 and crypto/tls, etcd, kubectl, \
                       openssl, curl, Python ssl)";
        return Err(match &a.file {
            Some(path) => Error::bad_file(path, problem),
            None => Error::Invalid(format!("{source}: {problem}: {}", excerpt(&text))),
        });
    }
    let explained = match &a.dir {
        None => explain(messages, None),
        Some(dir) => {
            let spec = cluster_of(dir, a.config.as_deref(), false)?.spec;
            let catalog = Catalog::build(&spec);
            let topology = Topology::build(&spec, &catalog);
            let inventory = Inventory::load(dir, &catalog);
            let at = a.at.unwrap_or_else(OffsetDateTime::now_utc);
            let report = verify(&spec, &catalog, &topology, &inventory, &VerifyOptions::at(at));
            let view = TreeView { catalog: &catalog, topology: &topology, inventory: &inventory, report: &report };
            explain(messages, Some(&view))
        }
    };
    emit(a.output, || text_of(&explained, a.dir.as_deref()), &explained)?;
    Ok(ExitCode::SUCCESS)
}

/// The text to explain and where it came from.
fn input(a: &ExplainArgs) -> Result<(String, String)> {
    if let Some(path) = &a.file {
        let bytes = kubepki::disk::readfile::read(path, kubepki::disk::readfile::Limit::Document)?;
        return Ok((String::from_utf8_lossy(&bytes).into_owned(), path.display().to_string()));
    }
    let text: Vec<&str> = a.first.iter().chain(&a.rest).map(String::as_str).collect();
    let stdin = text.is_empty() || text == ["-"];
    if !stdin {
        return Ok((text.join(" "), "the text given".into()));
    }
    if text.is_empty() && std::io::stdin().is_terminal() {
        return Err(Error::Invalid(
            "explain: give the error text as an argument, on stdin (`-`), or with --file LOG".into(),
        ));
    }
    let bytes = kubepki::disk::readfile::read_stdin_bytes(kubepki::disk::readfile::Limit::Document)?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), "stdin".into()))
}
