//! Password reset through a real SMTP server (aiosmtpd, started by the test): the mailed link
//! works once, expires, and signs every session out.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::helpers::{NotesApp, PASSWORD, location, spawn_sqlite, unique_email};

/// An SMTP server on 127.0.0.1 that writes each message it receives into a directory.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

const SINK: &str = r#"
import pathlib, sys, threading
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        directory = pathlib.Path(sys.argv[2])
        count = len(list(directory.iterdir()))
        (directory / f"{count:04}.tmp").write_bytes(envelope.content)
        (directory / f"{count:04}.tmp").rename(directory / f"{count:04}.eml")
        return "250 OK"

controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
threading.Event().wait()
"#;

impl SmtpSink {
    /// `None` (skipped, or failing under CI) when Python's aiosmtpd is not installed.
    fn start() -> Option<SmtpSink> {
        let available = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !platform::testing::require("python3 with aiosmtpd (pip install aiosmtpd)", available) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = platform::testing::temp_path("mail");
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("python3")
            .args(["-c", SINK, &port.to_string(), dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the SMTP sink started");
        Some(SmtpSink { child, port, dir })
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, in order.
    fn messages(&self) -> Vec<String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        paths.sort();
        paths.iter().map(|path| read(path)).collect()
    }
}

fn read(path: &Path) -> String {
    // Quoted-printable soft line breaks would split the link.
    std::fs::read_to_string(path)
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "")
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The path of the reset link in `mail`.
fn reset_path(mail: &str) -> String {
    let start = mail
        .find("/reset-password/")
        .expect("the mail has a reset link");
    let token: String = mail[start + "/reset-password/".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(token.len(), 64, "{mail}");
    format!("/reset-password/{token}/")
}

/// Asks for a reset link for `email` and waits for the mail; its link path.
async fn mailed_link(app: &NotesApp, sink: &SmtpSink, email: &str) -> String {
    let before = sink.messages().len();
    let response = app
        .browser()
        .post("/forgot-password/", &[("email", email)])
        .await;
    assert_eq!(location(&response), "/signin/");
    platform::testing::eventually(|| async { sink.messages().len() > before }).await;
    let mail = sink.messages().pop().unwrap();
    assert!(mail.contains(email), "sent to the user");
    assert!(!mail.contains(PASSWORD), "never a password in a mail");
    reset_path(&mail)
}

#[tokio::test]
async fn a_mailed_reset_link_changes_the_password_once_and_signs_everyone_out() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = spawn_sqlite(&[
        ("mail.smtp_url", &sink.url()),
        ("notes.public_url", "https://notes.example.com"),
    ])
    .await;
    let (signed_in, email) = app.signed_in().await;
    let link = mailed_link(&app, &sink, &email).await;
    assert!(sink.messages()[0].contains(&format!("https://notes.example.com{link}")));

    let browser = app.browser();
    assert!(browser.page(&link).await.contains("Choose a new password"));
    let mismatch = browser
        .post_page(
            &link,
            &[
                ("password", "new password 1"),
                ("confirm_password", "other"),
            ],
        )
        .await;
    assert!(mismatch.contains("Passwords do not match"));
    let fields = [
        ("password", "new password 1"),
        ("confirm_password", "new password 1"),
    ];
    assert_eq!(location(&browser.post(&link, &fields).await), "/signin/");
    assert!(
        browser
            .page("/signin/")
            .await
            .contains("Password is successfully changed")
    );

    // Single use: the link is dead now, by GET and by POST.
    assert_eq!(browser.get(&link).await.status(), 404);
    let again = [
        ("password", "new password 2"),
        ("confirm_password", "new password 2"),
    ];
    assert_eq!(browser.post(&link, &again).await.status(), 404);

    assert_eq!(
        signed_in.get("/").await.status(),
        303,
        "old sessions are gone"
    );
    let old = browser
        .post_page("/signin/", &[("email", &email), ("password", PASSWORD)])
        .await;
    assert!(old.contains("Wrong email or password"));
    assert_eq!(
        location(&browser.signin(&email, "new password 1").await),
        "/"
    );
}

#[tokio::test]
async fn an_expired_reset_link_does_not_work() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = spawn_sqlite(&[
        ("mail.smtp_url", &sink.url()),
        ("notes.reset_token_ttl", "0s"),
    ])
    .await;
    let (_, email) = app.signed_in().await;
    let link = mailed_link(&app, &sink, &email).await;
    let browser = app.browser();
    assert_eq!(browser.get(&link).await.status(), 404);
    let fields = [
        ("password", "new password 1"),
        ("confirm_password", "new password 1"),
    ];
    assert_eq!(browser.post(&link, &fields).await.status(), 404);
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_answer_and_no_mail() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = spawn_sqlite(&[("mail.smtp_url", &sink.url())]).await;
    let browser = app.browser();
    let response = browser
        .post("/forgot-password/", &[("email", &unique_email())])
        .await;
    assert_eq!(location(&response), "/signin/");
    let (_, email) = app.signed_in().await;
    mailed_link(&app, &sink, &email).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "only the registered user got a mail"
    );
}
