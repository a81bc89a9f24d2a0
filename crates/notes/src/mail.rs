//! Outgoing mail: password-reset links through SMTP (`mail.smtp_url`), or into the log when no
//! server is configured (development).

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailSettings;
use crate::error::NotesError;

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// Logged at `info`, with the link: for development only.
    Log,
    /// Sent through an SMTP server.
    Smtp {
        /// The connection pool to the server.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The `From` address.
        from: Mailbox,
    },
}

impl Mailer {
    /// The mailer `[mail]` describes. `smtp://host:port` is plain SMTP (a relay on localhost),
    /// `smtps://…` is TLS, `?tls=required` asks for STARTTLS; credentials go in the URL.
    pub fn new(settings: &MailSettings) -> Result<Mailer, String> {
        let Some(url) = &settings.smtp_url else {
            return Ok(Mailer::Log);
        };
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|error| format!("mail.from `{}`: {error}", settings.from))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|error| format!("mail.smtp_url: {error}"))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Mailer::Smtp { transport, from })
    }

    /// Sends the password-reset `link` to `to`.
    pub async fn send_reset_link(&self, to: &str, link: &str) -> Result<(), NotesError> {
        let body = format!(
            "Someone asked to reset the password of your Notes account.\n\n\
             To choose a new password, open this link within the hour:\n\n{link}\n\n\
             The link works once. If you did not ask for it, ignore this mail: your password \
             stays as it is.\n"
        );
        match self {
            Mailer::Log => {
                tracing::info!(to, link, "Password reset mail (mail.smtp_url is unset).");
                Ok(())
            }
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = to
                    .parse()
                    .map_err(|error| NotesError::Mail(format!("recipient: {error}")))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject("Reset your Notes password")
                    .body(body)
                    .map_err(|error| NotesError::Mail(error.to_string()))?;
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|error| NotesError::Mail(error.to_string()))
            }
        }
    }
}
