//! The input of `on_handshake` (ABI.md §3).

use crate::list::ListIter;

/// The request of `on_handshake`: the client id it will have, the request
/// line, the peer's address and the headers (names in lower case).
#[derive(Clone, Copy, Debug)]
pub struct Handshake<'a> {
    fields: [&'a [u8]; 5],
    headers: &'a [u8],
}

impl<'a> Handshake<'a> {
    /// Parses the list the host passes; None if it is not one.
    pub fn parse(input: &'a [u8]) -> Option<Handshake<'a>> {
        let mut it = ListIter::from_bytes(input);
        let mut fields: [&[u8]; 5] = [&[]; 5];
        for f in fields.iter_mut() {
            *f = it.next()?;
        }
        Some(Handshake { fields, headers: it.rest() })
    }

    fn str(&self, i: usize) -> &'a str {
        core::str::from_utf8(self.fields[i]).unwrap_or("")
    }

    /// The id the client will have once accepted.
    pub fn client_id(&self) -> &'a str {
        self.str(0)
    }
    /// The HTTP method (`GET`).
    pub fn method(&self) -> &'a str {
        self.str(1)
    }
    /// The path, as requested.
    pub fn path(&self) -> &'a [u8] {
        self.fields[2]
    }
    /// The query string, without `?`.
    pub fn query(&self) -> &'a [u8] {
        self.fields[3]
    }
    /// The client's address, `ip:port` (port 0 behind a trusted proxy).
    pub fn remote_addr(&self) -> &'a str {
        self.str(4)
    }

    /// Every header, as (lower-case name, value), in request order.
    pub fn headers(&self) -> Headers<'a> {
        Headers(ListIter::from_bytes(self.headers))
    }

    /// The first value of the header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| v)
    }

    /// The first value of the query parameter `key`, percent-decoded
    /// (`+` is a space); None if absent or badly escaped.
    pub fn query_value(&self, key: &str) -> Option<Vec<u8>> {
        for pair in self.query().split(|&c| c == b'&') {
            let mut kv = pair.splitn(2, |&c| c == b'=');
            let k = unescape(kv.next().unwrap_or(&[]))?;
            if k == key.as_bytes() {
                return unescape(kv.next().unwrap_or(&[]));
            }
        }
        None
    }
}

fn unescape(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = |c: u8| (c as char).to_digit(16);
                let hi = h(*s.get(i + 1)?)?;
                let lo = h(*s.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// The headers of a [`Handshake`].
#[derive(Clone, Debug)]
pub struct Headers<'a>(ListIter<'a>);

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let k = self.0.next()?;
        let v = self.0.next()?;
        Some((k, v))
    }
}
