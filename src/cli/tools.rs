//! The operator's tools, made from the same clap definitions as the commands: shell
//! completions, man pages, and the version with its commit and crypto backend.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use super::{emit, print, Args, Format};
use kubepki::disk::store::{write_atomic, Mode};
use kubepki::{Error, Result};

#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Write kubepki.1 and a page per command (kubepki-verify.1, ...) into this directory,
    /// instead of kubepki.1 to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VersionArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// What `kubepki version` says.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    version: &'static str,
    commit: &'static str,
    crypto_backend: &'static str,
}

const VERSION: Version = Version {
    version: env!("CARGO_PKG_VERSION"),
    commit: match option_env!("KUBEPKI_COMMIT") {
        Some(c) => c,
        None => "unknown",
    },
    // rcgen, rustls and x509-parser's signature checks all run on aws-lc-rs.
    crypto_backend: "aws-lc-rs",
};

pub(crate) fn completions(a: CompletionsArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut Args::command(), "kubepki", &mut out);
    print(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn man(a: ManArgs) -> Result<ExitCode> {
    let cmd = Args::command();
    let Some(dir) = a.out else {
        print(&String::from_utf8_lossy(&render(cmd)?))?;
        return Ok(ExitCode::SUCCESS);
    };
    if !dir.is_dir() {
        return Err(Error::bad_file(&dir, "no such directory"));
    }
    let mut pages = vec![("kubepki.1".to_string(), render(cmd.clone())?)];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("kubepki-{}", sub.get_name());
        pages.push((format!("{name}.1"), render(sub.clone().name(name))?));
    }
    for (file, bytes) in &pages {
        write_atomic(&dir.join(file), bytes, Mode::Public)?;
    }
    let names: Vec<&str> = pages.iter().map(|(f, _)| f.as_str()).collect();
    eprintln!("wrote {} man pages into {}: {}", pages.len(), dir.display(), names.join(" "));
    Ok(ExitCode::SUCCESS)
}

fn render(cmd: clap::Command) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out).map_err(|e| Error::Invalid(format!("rendering the man page: {e}")))?;
    Ok(out)
}

pub(crate) fn version(a: VersionArgs) -> Result<ExitCode> {
    let v = &VERSION;
    emit(
        a.output,
        || format!("kubepki {}\ncommit:         {}\ncrypto backend: {}\n", v.version, v.commit, v.crypto_backend),
        v,
    )?;
    Ok(ExitCode::SUCCESS)
}
