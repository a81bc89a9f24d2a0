//! A real headless Chromium driven over WebDriver, for the pages' end-to-end tests.

use super::app::{eventually, temp_path};
use super::tools::require;

/// A headless Chromium behind `chromedriver`, started on a free port for one test and stopped
/// when dropped. `None` (skipped locally, a failure under CI) when either is not installed.
pub struct Browser {
    driver: std::process::Child,
    url: String,
    profiles: Vec<std::path::PathBuf>,
}

impl Browser {
    /// Starts `chromedriver` and waits until it answers.
    pub async fn start() -> Option<Browser> {
        let installed = std::path::Path::new("/usr/bin/chromedriver").is_file()
            && std::path::Path::new("/usr/bin/chromium").is_file();
        if !require("chromium and chromedriver (Debian packages)", installed) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = std::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let client = reqwest::Client::new();
        eventually(|| async {
            client
                .get(&status)
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
        })
        .await;
        Some(Browser {
            driver,
            url,
            profiles: Vec::new(),
        })
    }

    /// A new browser window with a fresh profile (no shared cookies or storage), headless and
    /// with nothing reaching outside the machine.
    pub async fn session(&mut self) -> fantoccini::Client {
        let profile = temp_path("chromium");
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        self.profiles.push(profile);
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("built as an object"),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a browser session starts")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}
