//! Loopback HTTP servers that imports fetch from (web-download, tasks, glance-download
//! sources). Each binds port 0 and returns the port it got.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `body` to every request; returns the port.
pub async fn serve_bytes(body: Vec<u8>) -> u16 {
    let body = Arc::new(body);
    serve(move |mut sock| {
        let body = body.clone();
        async move {
            if answer_head(&mut sock, body.len()).await {
                let _ = sock.write_all(&body).await;
            }
        }
    })
    .await
}

/// Serves `size` bytes of 0x5a to every request, one 1 MiB chunk every `delay`: a
/// download that lasts. Returns the port.
pub async fn slow_source(size: usize, delay: Duration) -> u16 {
    serve(move |mut sock| async move {
        if !answer_head(&mut sock, size).await {
            return;
        }
        let chunk = vec![0x5au8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len());
            if sock.write_all(&chunk[..n]).await.is_err() {
                return;
            }
            left -= n;
            tokio::time::sleep(delay).await;
        }
    })
    .await
}

/// Accepts connections on a loopback port of the system's choosing, each handled by
/// `answer` on a task of its own, until the test's runtime ends.
async fn serve<F, Fut>(answer: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(answer(sock));
        }
    });
    port
}

/// Reads the request (its first 4 KiB are enough for these GETs) and writes a 200 head
/// for `length` bytes; false if the client went away.
async fn answer_head(sock: &mut TcpStream, length: usize) -> bool {
    let mut buf = [0u8; 4096];
    let _ = sock.read(&mut buf).await;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await.is_ok()
}
