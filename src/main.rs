//! The `kubepki` command: a client of the library's public API (see `cli/`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
