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

/// Long-lived sessions (WebSockets) and the moment they must end.
///
/// hyper's graceful drain does not see a connection once it is upgraded, so a service that
/// holds such sessions registers each with [`Sessions::enter`] and ends it when
/// [`Sessions::stopping`] resolves (chat closes with 1001). The server stops them when its
/// listeners stop accepting, then waits for them within `shutdown.grace`.
///
/// ```
/// # async fn demo() {
/// let sessions = platform::shutdown::Sessions::default();
/// let guard = sessions.enter();
/// let watcher = sessions.clone();
/// tokio::spawn(async move {
///     watcher.stopping().await;
///     drop(guard); // the session says goodbye, then ends
/// });
/// sessions.stop();
/// sessions.idle().await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: std::sync::Arc<SessionsInner>,
}

#[derive(Debug)]
struct SessionsInner {
    stop: tokio::sync::watch::Sender<bool>,
    active: tokio::sync::watch::Sender<usize>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            inner: std::sync::Arc::new(SessionsInner {
                stop: tokio::sync::watch::Sender::new(false),
                active: tokio::sync::watch::Sender::new(0),
            }),
        }
    }
}

/// One registered session; it counts as active until dropped.
#[derive(Debug)]
pub struct SessionGuard {
    sessions: Sessions,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions
            .inner
            .active
            .send_modify(|active| *active = active.saturating_sub(1));
    }
}

impl Sessions {
    /// Registers a session until the guard drops.
    pub fn enter(&self) -> SessionGuard {
        self.inner.active.send_modify(|active| *active += 1);
        SessionGuard {
            sessions: self.clone(),
        }
    }

    /// Sessions active now.
    pub fn active(&self) -> usize {
        *self.inner.active.borrow()
    }

    /// Tells every session to end.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Whether [`Sessions::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Resolves once [`Sessions::stop`] is called (at once if it was).
    pub async fn stopping(&self) {
        let mut stop = self.inner.stop.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// Resolves once no session is active.
    pub async fn idle(&self) {
        let mut active = self.inner.active.subscribe();
        let _ = active.wait_for(|active| *active == 0).await;
    }
}
