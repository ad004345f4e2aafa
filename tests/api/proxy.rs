//! A TCP proxy in front of Postgres that a test can cut (connections reset, new ones
//! refused), stall (connections stay open but no byte moves either way) and restore, to see
//! the app lose its database and get it back without a restart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub struct PgProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    flowing: watch::Sender<bool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl PgProxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let (flowing, _) = watch::channel(true);
        let links = Arc::new(Mutex::new(Vec::new()));
        let (accept_up, accept_links, accept_flowing) =
            (up.clone(), links.clone(), flowing.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client); // refused: the database is "down"
                    continue;
                }
                let target = target.clone();
                let flowing = accept_flowing.subscribe();
                let link = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, flowing.clone()),
                        pump(server_read, client_write, flowing),
                    );
                });
                accept_links.lock().unwrap().push(link.abort_handle());
            }
        });
        Self {
            addr,
            up,
            flowing,
            links,
        }
    }

    /// Cuts every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Keeps every connection open but forwards nothing, as a dead network path does.
    pub fn stall(&self) {
        self.flowing.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.flowing.send_replace(true);
    }
}

/// Copies one direction, holding each chunk while the proxy is stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut flowing: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if flowing.wait_for(|flowing| *flowing).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
