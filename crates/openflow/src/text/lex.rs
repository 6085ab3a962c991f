//! Splitting ovs-ofctl text into `key`, `key=value`, `key:value` and `key(value)` items, the way
//! OVS's `ofputil_parse_key_value` does, and the number syntaxes every parser shares.

use super::parse::ParseError;

/// One item of a comma/space separated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// The key (`priority`, `output`, `ct`, `NXM_NX_REG0[0..3]`).
    pub key: &'a str,
    /// What followed the key's delimiter (empty when there was none).
    pub value: &'a str,
    /// The delimiter after the key: `=`, `:`, `(` or `None`.
    pub delim: Option<char>,
    /// The whole item as written, for error messages.
    pub text: &'a str,
}

/// Iterates over the items of `s`.
pub fn items(s: &str) -> Items<'_> {
    Items { s, pos: 0 }
}

/// The iterator returned by [`items`].
#[derive(Debug, Clone)]
pub struct Items<'a> {
    s: &'a str,
    pos: usize,
}

fn is_sep(b: u8) -> bool {
    matches!(b, b',' | b' ' | b'\t' | b'\r' | b'\n')
}

/// Length of a value ending at one of `delims` (at paren level 0), as OVS's `parse_value`.
fn value_len(s: &[u8], delims: &[u8]) -> usize {
    let mut n = 0;
    while n < s.len() && !delims.contains(&s[n]) {
        if s[n] == b'(' {
            let mut level = 0i32;
            loop {
                if n >= s.len() {
                    return n;
                }
                match s[n] {
                    b'(' => level += 1,
                    b')' => level -= 1,
                    _ => {}
                }
                n += 1;
                if level <= 0 {
                    break;
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        let b = self.s.as_bytes();
        while self.pos < b.len() && is_sep(b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        let key_len = b[start..].iter().position(|&c| matches!(c, b':' | b'=' | b'(') || is_sep(c)).unwrap_or(b.len() - start);
        let key = &self.s[start..start + key_len];
        let delim = b.get(start + key_len).copied();
        self.pos = start + key_len + usize::from(delim.is_some());
        let value_delims: &[u8] = match delim {
            Some(b':' | b'=') => b", \t\r\n",
            Some(b'(') => b")",
            _ => {
                return Some(Item { key, value: "", delim: None, text: key });
            }
        };
        let vstart = self.pos;
        let mut vlen = value_len(&b[vstart..], value_delims);
        // "(x)->y": a parenthesized source followed by a destination.
        if delim == Some(b'(') && b.get(vstart + vlen) == Some(&b')') && b[vstart + vlen + 1..].starts_with(b"->") {
            vlen += value_len(&b[vstart + vlen..], b", \t\r\n");
        }
        let value = &self.s[vstart..vstart + vlen];
        let end = vstart + vlen;
        self.pos = if end < b.len() { end + 1 } else { end };
        let text_end = if delim == Some(b'(') && b.get(end) == Some(&b')') { end + 1 } else { end };
        Some(Item { key, value, delim: delim.map(char::from), text: &self.s[start..text_end] })
    }
}

/// An unsigned integer in C syntax: `0x` hex or decimal (OVS's `str_to_*`, `parse_int_string`).
pub fn parse_uint(s: &str) -> Option<u128> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 32 {
            return None;
        }
        return u128::from_str_radix(h, 16).ok();
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An integer that must fit `bits` bits, with an error naming `what` and the text.
pub fn parse_uint_bits(s: &str, bits: u32, what: &str) -> Result<u128, ParseError> {
    let v = parse_uint(s).ok_or_else(|| ParseError::new(s, format!("{what}: expected a number")))?;
    if bits < 128 && v >> bits != 0 {
        return Err(ParseError::new(s, format!("{what}: {v} does not fit in {bits} bits")));
    }
    Ok(v)
}

/// A u8.
pub fn parse_u8(s: &str, what: &str) -> Result<u8, ParseError> {
    parse_uint_bits(s, 8, what).map(|v| v as u8)
}

/// A u16.
pub fn parse_u16(s: &str, what: &str) -> Result<u16, ParseError> {
    parse_uint_bits(s, 16, what).map(|v| v as u16)
}

/// A u32.
pub fn parse_u32(s: &str, what: &str) -> Result<u32, ParseError> {
    parse_uint_bits(s, 32, what).map(|v| v as u32)
}

/// A u64.
pub fn parse_u64(s: &str, what: &str) -> Result<u64, ParseError> {
    parse_uint_bits(s, 64, what).map(|v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<(&str, &str)> {
        items(s).map(|i| (i.key, i.value)).collect()
    }

    #[test]
    fn items_split_on_commas_and_spaces_keeping_parenthesized_values_whole() {
        assert_eq!(
            keys("priority=5, tcp,ct(commit,exec(set_field:1->ct_mark)) output:2"),
            vec![("priority", "5"), ("tcp", ""), ("ct", "commit,exec(set_field:1->ct_mark)"), ("output", "2")]
        );
    }

    #[test]
    fn a_parenthesized_source_with_an_arrow_is_one_item() {
        assert_eq!(keys("move(NXM_NX_REG0[])->NXM_NX_REG1[],x"), vec![("move", "NXM_NX_REG0[])->NXM_NX_REG1[]"), ("x", "")]);
    }

    #[test]
    fn numbers_accept_hex_and_decimal_only() {
        assert_eq!(parse_uint("0x1F"), Some(31));
        assert_eq!(parse_uint("42"), Some(42));
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("0x"), None);
        assert!(parse_u8("256", "nw_proto").unwrap_err().to_string().contains("nw_proto"));
    }
}
