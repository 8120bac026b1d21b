fn main() -> std::process::ExitCode {
    kubepki::cli::main()
}
