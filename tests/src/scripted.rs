//! A backend that answers with exact bytes chosen by the test, to exercise
//! what a well-behaved library backend never sends: every body framing,
//! informational answers, connections closed at odd moments, malformed and
//! ambiguous heads. It records each request (decoded body included) and
//! the connection it came on.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

/// A request as the backend received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub target: String,
    /// Lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The body with its transfer coding removed.
    pub body: Vec<u8>,
    /// Which backend connection (0, 1, ...) carried it.
    pub conn: usize,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to send back.
pub struct Reply {
    pub bytes: Vec<u8>,
    /// Close the connection this long after the reply (`Some(ZERO)`: at
    /// once); `None` keeps it open for the next request.
    pub close_after: Option<Duration>,
}

impl Reply {
    pub fn keep(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            close_after: None,
        }
    }

    pub fn then_close(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            close_after: Some(Duration::ZERO),
        }
    }
}

type Script = dyn Fn(&Received) -> Reply + Send + Sync;

pub struct ScriptedBackend {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<Mutex<usize>>,
}

impl ScriptedBackend {
    /// Serves on an ephemeral loopback port until the test process ends.
    pub fn start(script: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> ScriptedBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (log, count) = (received.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let conn = {
                    let mut n = count.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let (script, log) = (script.clone(), log.clone());
                thread::spawn(move || serve(stream, conn, &*script, &log));
            }
        });
        ScriptedBackend {
            addr,
            received,
            connections,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

fn serve(stream: TcpStream, conn: usize, script: &Script, log: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader, conn) {
        log.lock().unwrap().push(req.clone());
        let reply = script(&req);
        if writer.write_all(&reply.bytes).is_err() {
            return;
        }
        if let Some(after) = reply.close_after {
            thread::sleep(after);
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn read_request(r: &mut impl BufRead, conn: usize) -> Option<Received> {
    let line = read_line(r)?;
    let mut words = line.split(' ');
    let (method, target) = (words.next()?.to_string(), words.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(h, _)| h == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(r)?;
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                while !read_line(r)?.is_empty() {}
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
            read_line(r)?;
        }
    } else if let Some(n) = get("content-length") {
        body = vec![0; n.parse().ok()?];
        r.read_exact(&mut body).ok()?;
    }
    Some(Received {
        method,
        target,
        headers,
        body,
        conn,
    })
}

fn read_line(r: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}
