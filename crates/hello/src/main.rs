//! The `hello` binary.

fn main() -> std::process::ExitCode {
    platform::run(hello::service())
}
