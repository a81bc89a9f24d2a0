//! The `chat` binary.

fn main() -> std::process::ExitCode {
    platform::run(chat::service())
}
