//! The `notes` binary.

fn main() -> std::process::ExitCode {
    platform::run(notes::service())
}
