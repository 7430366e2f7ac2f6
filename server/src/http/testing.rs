//! A server in this process on 127.0.0.1, for the tests of serving,
//! authentication and the dashboard over real connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::server::{DataDir, Limits, now_ms};

/// A server running on its own runtime thread until dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The admin's API token.
    pub admin: String,
    /// The data folder.
    pub data: Arc<DataDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts on a fresh data folder (first start done) on a free port.
    pub fn start(limits: Limits) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
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

    /// Stops the server; it must be gone within `within`.
    pub fn stop(mut self, within: Duration) {
        let _ = self.stop.take().unwrap().send(());
        let result = self.done.recv_timeout(within).expect("graceful shutdown finishes");
        result.unwrap();
    }
}
