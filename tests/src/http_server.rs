//! A small HTTP/1.1 server on the host for network boot tests: QEMU's
//! user-mode network lets the guest reach it as `10.0.2.2:<port>`. It
//! serves files (with Content-Length, or chunked), redirects and 404s,
//! one thread per connection, until dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// What a path answers.
#[derive(Clone, Debug)]
pub enum Route {
    /// The file, with Content-Length.
    File(PathBuf),
    /// The file in the chunked transfer coding (no length up front).
    Chunked(PathBuf),
    /// A 302 to another path on this server.
    Redirect(String),
}

pub struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving `routes` (path -> route) on an ephemeral port of
    /// 127.0.0.1; other paths answer 404.
    pub fn start(routes: &[(&str, Route)]) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<HashMap<String, Route>> = Arc::new(
            routes
                .iter()
                .map(|(path, route)| (path.to_string(), route.clone()))
                .collect(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let routes = routes.clone();
                        std::thread::spawn(move || {
                            let _ = serve(stream, &routes);
                        });
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        HttpServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL of `path` as the guest sees it.
    pub fn guest_url(&self, path: &str) -> String {
        format!("http://10.0.2.2:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, routes: &HashMap<String, Route>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut out = stream;
    match routes.get(&path) {
        Some(Route::File(file)) => {
            let mut source = std::fs::File::open(file)?;
            let length = source.metadata()?.len();
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
            )?;
            std::io::copy(&mut source, &mut out)?;
        }
        Some(Route::Chunked(file)) => {
            let mut source = std::fs::File::open(file)?;
            write!(
                out,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )?;
            let mut buffer = vec![0u8; 60_000];
            loop {
                let n = source.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                write!(out, "{n:x}\r\n")?;
                out.write_all(&buffer[..n])?;
                out.write_all(b"\r\n")?;
            }
            out.write_all(b"0\r\n\r\n")?;
        }
        Some(Route::Redirect(to)) => {
            write!(
                out,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        None => {
            write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
    }
    out.flush()
}
