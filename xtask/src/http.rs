//! The HTTP client xtask talks to the nodes' APIs with: HTTP/1.1 over a
//! standard library `TcpStream`, one connection per request (`Connection:
//! close`), JSON bodies as `serde_json` values. The nodes are on this
//! machine and xtask makes a few requests a second, so nothing more is
//! needed; an HTTP library and its async runtime would be most of xtask's
//! build. (The benchmark's concurrent load is `loadgen`'s, with the
//! workspace's async client.)

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// An answer: the status code and the body as text.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Response {
    /// A 2xx status.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).context("the answer is not JSON")
    }
}

/// A client: how long a connection, a write or a read may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Client {
    timeout: Duration,
}

impl Client {
    pub(crate) fn new(timeout: Duration) -> Client {
        Client { timeout }
    }

    /// `GET url`.
    pub(crate) fn get(&self, url: &str) -> anyhow::Result<Response> {
        self.request("GET", url, None, None)
            .with_context(|| format!("GET {url}"))
    }

    /// `POST url` with a JSON body, and a bearer token if given.
    pub(crate) fn post(
        &self,
        url: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Response> {
        self.request("POST", url, token, Some(body))
            .with_context(|| format!("POST {url}"))
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        let (host, path) = split_url(url)?;
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n"
        );
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if method != "GET" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse_response(&raw)
    }
}

/// `http://host:port/path` as (`host:port`, `/path`).
fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not an http:// URL"))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// A whole answer as read up to the connection's end: the status line, the
/// headers, and the body (`Content-Length` long, chunked, or to the end).
fn parse_response(raw: &[u8]) -> anyhow::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the answer's headers do not end")?;
    let head = std::str::from_utf8(&raw[..split]).context("the answer's headers are not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in `{status_line}`"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("a bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .context("the answer ends before its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8(body).context("the answer's body is not UTF-8")?,
    })
}

/// A chunked body's bytes.
fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk's size line does not end")?;
        let size_line = std::str::from_utf8(&rest[..end]).context("a chunk size is not text")?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("a bad chunk size `{size_line}`"))?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let Some(chunk) = rest.get(..size) else {
            bail!("the answer ends inside a chunk");
        };
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    #[test]
    fn answers_with_a_length_chunked_or_to_the_end_are_read_whole() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        assert!(r.is_success());
        let r = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "abcde"));
        assert!(!r.is_success());
        let r = parse_response(b"HTTP/1.1 503 Busy\r\n\r\nlater").unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "later"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8000/accounts/ab").unwrap(),
            ("127.0.0.1:8000", "/accounts/ab")
        );
        assert_eq!(
            split_url("http://127.0.0.1:8000").unwrap(),
            ("127.0.0.1:8000", "/")
        );
        assert!(split_url("https://example.invalid/").is_err());
    }

    #[test]
    fn a_post_sends_its_token_and_json_body_and_reads_the_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mine", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream);
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_string());
            }
            let length: usize = head
                .iter()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = reader.into_inner();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{\"blocks\":[]}")
                .unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        let answer = Client::new(Duration::from_secs(10))
            .post(&url, Some("t0ken"), &serde_json::json!({ "blocks": 2 }))
            .unwrap();
        assert_eq!(answer.json().unwrap(), serde_json::json!({ "blocks": [] }));
        let (head, body) = server.join().unwrap();
        assert_eq!(head[0], "POST /mine HTTP/1.1");
        assert!(head.contains(&"Authorization: Bearer t0ken".to_string()));
        assert!(head.contains(&"Content-Type: application/json".to_string()));
        assert_eq!(body, r#"{"blocks":2}"#);
    }

    #[test]
    fn nothing_listening_is_an_error_not_a_hang() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/status");
        assert!(Client::new(Duration::from_secs(5)).get(&url).is_err());
    }
}
