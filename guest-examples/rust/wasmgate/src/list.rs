//! Lists (ABI.md §2): entries, each a 4-byte little-endian length followed
//! by that many bytes.

use std::cell::RefCell;

/// A list in its ABI encoding, borrowed: a list the host returned (read it
/// with [`List::iter`]) or one to pass back to it as is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct List<'a>(&'a [u8]);

impl<'a> List<'a> {
    /// The empty list.
    pub const EMPTY: List<'static> = List(&[]);

    /// Wraps bytes that are a list's encoding (not checked: a broken
    /// encoding ends [`List::iter`] early, and the host refuses it as an
    /// argument with [`Errno::INVALID`](crate::Errno::INVALID)).
    pub const fn from_encoded(b: &'a [u8]) -> List<'a> {
        List(b)
    }

    /// The encoding.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The entries, in order. It stops at a broken entry.
    pub fn iter(&self) -> ListIter<'a> {
        ListIter(self.0)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Reports whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reports whether the list has the entry `s`.
    pub fn contains(&self, s: impl AsRef<[u8]>) -> bool {
        let s = s.as_ref();
        self.iter().any(|e| e == s)
    }

    /// The entries as owned strings (invalid UTF-8 replaced by U+FFFD).
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect()
    }
}

impl<'a> IntoIterator for List<'a> {
    type Item = &'a [u8];
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        ListIter(self.0)
    }
}

/// The entries of a [`List`].
#[derive(Clone, Debug)]
pub struct ListIter<'a>(&'a [u8]);

impl<'a> ListIter<'a> {
    pub(crate) fn from_bytes(b: &'a [u8]) -> ListIter<'a> {
        ListIter(b)
    }

    /// The bytes not read yet (empty at the end of a well-formed list).
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n > b.len() - 4 {
            return None;
        }
        let (e, rest) = b[4..].split_at(n);
        self.0 = rest;
        Some(e)
    }
}

/// A list being built: `ListBuf::new().with("a").with("b")`. Reuse one
/// with [`ListBuf::clear`] to build lists without allocating.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListBuf(Vec<u8>);

impl ListBuf {
    /// An empty list.
    pub const fn new() -> ListBuf {
        ListBuf(Vec::new())
    }

    /// Appends one entry.
    pub fn push(&mut self, entry: impl AsRef<[u8]>) {
        push(&mut self.0, entry.as_ref())
    }

    /// Appends one entry and returns the list.
    pub fn with(mut self, entry: impl AsRef<[u8]>) -> ListBuf {
        self.push(entry);
        self
    }

    /// Empties the list, keeping its memory.
    pub fn clear(&mut self) {
        self.0.clear()
    }

    /// The list, borrowed.
    pub fn as_list(&self) -> List<'_> {
        List(&self.0)
    }
}

fn push(out: &mut Vec<u8>, e: &[u8]) {
    out.extend_from_slice(&(e.len() as u32).to_le_bytes());
    out.extend_from_slice(e);
}

/// Anything the SDK accepts where the ABI takes a list of ids, uids or
/// groups: a single `&str` or `String` (one entry), a slice, array or
/// `Vec` of strings or byte strings (`["a", "b"]`, `&names`), a
/// [`List`] the host returned, a [`ListBuf`], or `()` for the empty list.
/// Slices are encoded into a scratch buffer the SDK reuses, so passing
/// them allocates nothing once it has grown.
pub trait AsList {
    /// The ABI encoding, if the value already is one.
    fn encoded(&self) -> Option<&[u8]> {
        None
    }
    /// Appends the ABI encoding to `out` (when [`AsList::encoded`] is None).
    fn encode_into(&self, out: &mut Vec<u8>);
}

impl AsList for () {
    fn encoded(&self) -> Option<&[u8]> {
        Some(&[])
    }
    fn encode_into(&self, _: &mut Vec<u8>) {}
}
impl AsList for List<'_> {
    fn encoded(&self) -> Option<&[u8]> {
        Some(self.0)
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0)
    }
}
impl AsList for ListBuf {
    fn encoded(&self) -> Option<&[u8]> {
        Some(&self.0)
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0)
    }
}
impl AsList for str {
    fn encode_into(&self, out: &mut Vec<u8>) {
        push(out, self.as_bytes())
    }
}
impl AsList for String {
    fn encode_into(&self, out: &mut Vec<u8>) {
        push(out, self.as_bytes())
    }
}
impl<T: AsRef<[u8]>> AsList for [T] {
    fn encode_into(&self, out: &mut Vec<u8>) {
        for e in self {
            push(out, e.as_ref())
        }
    }
}
impl<T: AsRef<[u8]>, const N: usize> AsList for [T; N] {
    fn encode_into(&self, out: &mut Vec<u8>) {
        self[..].encode_into(out)
    }
}
impl<T: AsRef<[u8]>> AsList for Vec<T> {
    fn encode_into(&self, out: &mut Vec<u8>) {
        self[..].encode_into(out)
    }
}
impl<L: AsList + ?Sized> AsList for &L {
    fn encoded(&self) -> Option<&[u8]> {
        (**self).encoded()
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        (**self).encode_into(out)
    }
}

thread_local! {
    // Two, because send_to_group and send_to_all take two lists at once.
    static SCRATCH: [RefCell<Vec<u8>>; 2] = [RefCell::new(Vec::new()), RefCell::new(Vec::new())];
}

/// with_list calls f with the encoding of l: borrowed if l is encoded
/// already, else in a scratch buffer (a fresh one if both are in use).
#[inline]
pub(crate) fn with_list<L: AsList + ?Sized, R>(l: &L, f: impl FnOnce(&[u8]) -> R) -> R {
    if let Some(b) = l.encoded() {
        return f(b);
    }
    SCRATCH.with(|s| match s.iter().find_map(|c| c.try_borrow_mut().ok()) {
        Some(mut v) => {
            v.clear();
            l.encode_into(&mut v);
            f(&v)
        }
        None => {
            let mut v = Vec::new();
            l.encode_into(&mut v);
            f(&v)
        }
    })
}
