//! The listening socket's connections, wrapped so that the answers hyper
//! gives by itself (a request it cannot parse) carry tokend's JSON body too.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use poem::{
    http::uri::Scheme,
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::protocol_errors;

/// A TCP acceptor whose connections are [`Connection`]s.
pub struct JsonErrorsAcceptor(pub TcpAcceptor);

impl Acceptor for JsonErrorsAcceptor {
    type Io = Connection<<TcpAcceptor as Acceptor>::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.0.accept().await?;
        Ok((
            Connection {
                inner: io,
                rewritten: Vec::new(),
            },
            local,
            remote,
            scheme,
        ))
    }
}

/// A connection that passes everything through, but for hyper's own
/// bodyless error answers, written with the JSON body instead.
pub struct Connection<T> {
    inner: T,
    /// What is left to write of a rewritten answer.
    rewritten: Vec<u8>,
}

impl<T: AsyncWrite + Unpin> Connection<T> {
    /// Writes what is left of a rewritten answer; ready when it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.rewritten.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.rewritten) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.rewritten.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Connection<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Connection<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        if buf.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = protocol_errors::with_json_body(buf)
        {
            self.rewritten = answer;
            // Taken whole; what is left goes out on the next write or flush.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands each answer over as one buffer, head
    // first, which is what the rewrite reads.
    fn is_write_vectored(&self) -> bool {
        false
    }
}
