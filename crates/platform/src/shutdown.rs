//! Waiting for the signal that starts the drain: SIGTERM (Kubernetes, systemd) or SIGINT (Ctrl-C).
//! The drain itself is [`crate::server::RunningServer::shutdown`].

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => tracing::info!("SIGINT received."),
                    _ = terminate.recv() => tracing::info!("SIGTERM received."),
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "Cannot listen for SIGTERM; only SIGINT stops the service.");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
