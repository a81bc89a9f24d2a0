//! The `messages` binary.

fn main() -> std::process::ExitCode {
    platform::run(messages::service())
}
