//! A TCP forwarder between tokend and PostgreSQL that a test can cut and
//! restore, so that "the database went away" never touches the shared server.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// What the forwarder does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Up,
    /// PostgreSQL stopped: open connections are closed, new ones refused.
    Stopped,
    /// The network dropped: open connections go silent, new ones are
    /// accepted and never answered.
    Unreachable,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(watch::channel(Mode::Up).0);
        let task = tokio::spawn(serve(listener, upstream, mode.clone()));
        Proxy { addr, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, upstream: SocketAddr, mode: Arc<watch::Sender<Mode>>) {
    let addr = listener.local_addr().expect("proxy address");
    let mut listener = Some(listener);
    let mut changes = mode.subscribe();
    loop {
        let current = *changes.borrow_and_update();
        // Stopped: nothing listens, so connecting is refused.
        match (current, &listener) {
            (Mode::Stopped, Some(_)) => listener = None,
            (Mode::Up | Mode::Unreachable, None) => {
                listener = Some(rebind(addr).await);
            }
            _ => {}
        }
        let Some(l) = &listener else {
            if changes.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => {
                let Ok((client, _)) = accepted else { continue };
                tokio::spawn(connection(client, upstream, mode.subscribe()));
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The same port again (SO_REUSEADDR lets it be taken back at once).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("cannot listen on {addr} again");
}

/// One client connection: forwarded while up, silent while unreachable,
/// closed when stopped.
async fn connection(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if *mode.borrow_and_update() != Mode::Up {
        // Accepted while unreachable: never answered; closed on stop or restore.
        let _ = mode.changed().await;
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pipe(client_read, server_write, mode.clone()) => {}
        _ = pipe(server_read, client_write, mode.clone()) => {}
    }
}

/// Copies `from` to `to` while the mode is up; pauses while unreachable;
/// returns (closing both halves) once stopped or at end of stream.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Stopped => return,
            Mode::Unreachable => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Mode::Up => {}
        }
        tokio::select! {
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
