//! A fault-injecting TCP proxy in front of the emulator: passes traffic through, or refuses
//! connections, or accepts and never answers, or answers every request with the service's own
//! throttling error. Switching mode cuts every open connection, so pooled SDK connections see the
//! new mode on their next request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Traffic flows to the emulator.
    None,
    /// Nothing listens: connections are refused.
    Refuse,
    /// Connections are accepted and requests read, but no byte is ever answered (a stopped process).
    Hang,
    /// Every request gets the throttling error of the service it was meant for.
    Throttle,
    /// Every DynamoDB request is answered as a transaction cancelled by a concurrent one on the same
    /// items (`TransactionCanceledException`, every reason `TransactionConflict`).
    TransactionConflict,
}

pub struct FaultProxy {
    pub endpoint: String,
    mode: watch::Sender<Fault>,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (an `http://host:port` URL).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream is http://ip:port");
        let listener = bind("127.0.0.1:0".parse().expect("loopback address")).expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, watcher) = watch::channel(Fault::None);
        let requests = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, addr, upstream, watcher, requests.clone()));
        FaultProxy {
            endpoint: format!("http://{addr}"),
            mode,
            requests,
            task,
        }
    }

    /// Sets the fault from now on and cuts every open connection.
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// Requests answered with an injected error (throttling or a transaction conflict) so far.
    pub fn throttled(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Fault>,
    throttled: Arc<AtomicU64>,
) {
    let mut listener = Some(listener);
    loop {
        let current = *mode.borrow_and_update();
        if current == Fault::Refuse {
            // Close the port; reopen it once the fault is lifted.
            listener = None;
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let active = match &listener {
            Some(l) => l,
            None => match bind(addr) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        tokio::select! {
            accepted = active.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let watcher = mode.clone();
                let throttled = throttled.clone();
                tokio::spawn(async move {
                    let mut cut = watcher.clone();
                    tokio::select! {
                        _ = handle(client, upstream, current, throttled) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    throttled: Arc<AtomicU64>,
) {
    match fault {
        Fault::None => {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        }
        Fault::Hang => {
            let mut sink = [0u8; 8192];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
            std::future::pending::<()>().await;
        }
        Fault::Throttle | Fault::TransactionConflict => {
            while let Some(head) = read_request(&mut client).await {
                throttled.fetch_add(1, Ordering::Relaxed);
                let (status, content_type, body) = if fault == Fault::Throttle {
                    throttling_error(&head)
                } else {
                    TRANSACTION_CONFLICT
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-amzn-requestid: fault-proxy\r\n\r\n{body}",
                    body.len()
                );
                if client.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        Fault::Refuse => {}
    }
}

/// Reads one request (head and `content-length` body); returns the head in lower case.
async fn read_request(client: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buffer.len() - head_end;
    while have < length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        have += n;
    }
    Some(head)
}

/// DynamoDB's answer to a transaction that lost a race with another on the same items.
const TRANSACTION_CONFLICT: (&str, &str, &str) = (
    "400 Bad Request",
    "application/x-amz-json-1.0",
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, TransactionConflict]","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}"#,
);

/// The throttling error each service's protocol uses, chosen from the request's headers.
fn throttling_error(head: &str) -> (&'static str, &'static str, &'static str) {
    if head.contains("x-amz-target: dynamodb_") {
        (
            "400 Bad Request",
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
        )
    } else if head.contains("x-amz-target: amazonsqs.") {
        (
            "400 Bad Request",
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}"#,
        )
    } else if head.contains("content-type: application/x-www-form-urlencoded") {
        (
            "400 Bad Request",
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
        )
    } else {
        (
            "503 Slow Down",
            "application/xml",
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>",
        )
    }
}
