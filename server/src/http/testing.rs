//! A server in this process on 127.0.0.1, for the tests of serving,
//! authentication and the dashboard over real connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::server::{AppService, Limits, now_ms};

/// A server running on its own runtime thread until dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The admin's API token.
    pub admin: String,
    /// The data folder.
    pub data: Arc<AppService>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts on a fresh data folder (first start done) on a free port.
    pub fn start(limits: Limits) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let data = AppService::open(&dir.path().join("data")).unwrap();
        let admin = data.first_start(now_ms()).unwrap().unwrap().token.expose().to_owned();
        let data = Arc::new(data);
        let served = data.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let result = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                crate::server::serve(served, limits, listener, async move {
                    let _ = stopped.await;
                })
                .await
            });
            let _ = done_tx.send(result);
        });
        Running {
            addr: addr_rx.recv().unwrap(),
            admin,
            data,
            stop: Some(stop),
            done,
            _dir: dir,
        }
    }

    /// A raw connection, reads timing out after 200 ms.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s
    }

    /// Logs `username` in to the dashboard with `password` (set first, as
    /// `mpaka admin set-password` does); returns the session's `Cookie`
    /// header value.
    pub fn dashboard_session(&self, username: &str, password: &str) -> String {
        self.data.accounts.set_password(None, username, password).unwrap();
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = format!("http://{}/login", self.addr);
        let page = client.get(&url).send().unwrap();
        let pre = page.headers()[reqwest::header::SET_COOKIE].to_str().unwrap();
        let pre = pre.split(';').next().unwrap().to_owned();
        let csrf = csrf_of(&page.text().unwrap());
        let response = client
            .post(&url)
            .header(reqwest::header::COOKIE, pre)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("username={username}&password={password}&csrf={csrf}"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 303, "logged in");
        let session = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|v| v.starts_with("mpaka_session="))
            .unwrap();
        session.split(';').next().unwrap().to_owned()
    }

    /// Stops the server; it must be gone within `within`.
    pub fn stop(mut self, within: Duration) {
        let _ = self.stop.take().unwrap().send(());
        let result = self.done.recv_timeout(within).expect("graceful shutdown finishes");
        result.unwrap();
    }
}

/// The CSRF token of the first form on a dashboard page.
pub fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}
