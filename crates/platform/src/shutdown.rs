//! The signals that start the drain: SIGTERM (Kubernetes, systemd) or SIGINT (Ctrl-C).
//! The drain itself is [`crate::server::RunningServer::shutdown`].
//!
//! Handlers are installed by [`Signals::install`] before the listeners start, so a signal that
//! arrives right after start-up drains the service instead of killing it.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Installed SIGTERM and SIGINT handlers.
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers; from now on neither signal kills the process.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves when SIGTERM or SIGINT arrives.
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM received."),
            _ = self.interrupt.recv() => tracing::info!("SIGINT received."),
        }
    }
}
