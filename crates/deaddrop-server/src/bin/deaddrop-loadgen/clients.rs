//! Minimal clients for the load generator: RESP2 for Redis and HTTP/1.1 for the server, one
//! connection and one request at a time each, so that client overhead is alike on both sides.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::AnyResult;

/// A minimal RESP2 client: one connection, one command at a time.
pub(crate) struct Resp {
    reader: BufReader<TcpStream>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    Ok,
    Nil,
    Bulk(Vec<u8>),
    Other,
}

impl Resp {
    pub(crate) async fn connect(addr: SocketAddr) -> AnyResult<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Resp {
            reader: BufReader::new(stream),
        })
    }

    pub(crate) async fn command(&mut self, args: &[&[u8]]) -> AnyResult<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'+') => Ok(Reply::Ok),
            Some(b'-') => Err(format!("redis error: {line}").into()),
            Some(b'$') => {
                let len: i64 = line[1..].parse()?;
                if len < 0 {
                    return Ok(Reply::Nil);
                }
                let mut data = vec![0u8; usize::try_from(len)? + 2];
                self.reader.read_exact(&mut data).await?;
                data.truncate(data.len() - 2);
                Ok(Reply::Bulk(data))
            }
            Some(_) => Ok(Reply::Other),
            None => Err("redis closed the connection".into()),
        }
    }
}

/// A minimal HTTP/1.1 keep-alive client: one connection, one request at a time (the
/// counterpart of the minimal RESP client, so that client overhead is alike on both sides).
pub(crate) struct Http1 {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Http1 {
    pub(crate) async fn connect(url: &str) -> AnyResult<Self> {
        let host = url
            .strip_prefix("http://")
            .ok_or("only http:// URLs")?
            .to_owned();
        let stream = TcpStream::connect(host.as_str()).await?;
        stream.set_nodelay(true)?;
        Ok(Http1 {
            reader: BufReader::new(stream),
            host,
        })
    }

    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> AnyResult<(u16, Vec<u8>)> {
        let mut out = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        self.reader.get_mut().write_all(&out).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .ok_or("no status line")?
            .parse()?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut data = vec![0u8; length];
        self.reader.read_exact(&mut data).await?;
        Ok((status, data))
    }
}
