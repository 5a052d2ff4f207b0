use std::process::ExitCode;

fn main() -> ExitCode {
    tokend::cli::main()
}
