//! The HTTP client xtask talks to the nodes' APIs with: reqwest's blocking
//! client (the workspace's HTTP client, with the interface a sequential
//! orchestrator wants), JSON bodies as `serde_json` values, and an answer
//! read whole as its status and text. (The benchmark's concurrent load is
//! `loadgen`'s, with the same client's async interface.)

use std::time::Duration;

use anyhow::Context;
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

/// A client: how long a request (connecting, writing, reading) may take.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    inner: reqwest::blocking::Client,
}

impl Client {
    /// A client whose requests give up after `timeout`. (Building a client
    /// with no TLS and no proxy settings does not fail; if it did, the
    /// default client, without the timeout, would be used.)
    pub(crate) fn new(timeout: Duration) -> Client {
        let inner = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_default();
        Client { inner }
    }

    /// `GET url`.
    pub(crate) fn get(&self, url: &str) -> anyhow::Result<Response> {
        read(self.inner.get(url)).with_context(|| format!("GET {url}"))
    }

    /// `POST url` with a JSON body, and a bearer token if given.
    pub(crate) fn post(
        &self,
        url: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Response> {
        let mut request = self
            .inner
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request).with_context(|| format!("POST {url}"))
    }
}

/// Sends `request` and reads its answer whole.
fn read(request: reqwest::blocking::RequestBuilder) -> anyhow::Result<Response> {
    let answer = request.send()?;
    let status = answer.status().as_u16();
    let body = answer.text().context("the answer's body cannot be read")?;
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{BufRead, Read, Write};
    use std::net::TcpListener;

    use super::*;

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
                head.push(line.trim_end().to_ascii_lowercase());
            }
            let length: usize = head
                .iter()
                .find_map(|l| l.strip_prefix("content-length: "))
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
        assert!(answer.is_success());
        assert_eq!(answer.json().unwrap(), serde_json::json!({ "blocks": [] }));
        let (head, body) = server.join().unwrap();
        assert_eq!(head[0], "post /mine http/1.1");
        assert!(head.contains(&"authorization: bearer t0ken".to_string()));
        assert!(head.contains(&"content-type: application/json".to_string()));
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
