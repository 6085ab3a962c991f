//! OVSDB values (RFC 7047 §5.1) and their JSON encodings, in one place.
//!
//! An [`Atom`] is one integer, real, boolean, string or UUID. A [`Datum`] is a column value:
//! a set of atoms (a scalar is a set of one) or a map from atoms to atoms. On the wire a set
//! of exactly one atom is written bare, any other set as `["set", [...]]`, a map as
//! `["map", [[k, v], ...]]`, a UUID as `["uuid", "..."]` and a reference to a row inserted
//! earlier in the same transaction as `["named-uuid", "name"]`.
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A row UUID (RFC 4122 text form on the wire).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub u128);

impl Uuid {
    /// The all-zero UUID (`monitor_cond_since`'s "no transaction yet").
    pub const ZERO: Uuid = Uuid(0);

    /// Parses the 8-4-4-4-12 hex form.
    pub fn parse(s: &str) -> Option<Uuid> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let mut v: u128 = 0;
        for (i, &c) in b.iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                continue;
            }
            v = (v << 4) | (c as char).to_digit(16)? as u128;
        }
        Some(Uuid(v))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(f, "{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One OVSDB atomic value.
#[derive(Clone, Debug)]
pub enum Atom {
    /// A 64-bit signed integer.
    Integer(i64),
    /// An IEEE double (compared with `total_cmp` so atoms can live in ordered sets).
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTF-8 string.
    String(String),
    /// A reference to an existing row.
    Uuid(Uuid),
    /// A reference to a row inserted by an earlier operation of the same transaction.
    NamedUuid(String),
}

impl Atom {
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// A string atom.
    pub fn string(s: impl Into<String>) -> Atom {
        Atom::String(s.into())
    }

    /// The JSON form of this atom.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u.to_string()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    /// Decodes an atom; `None` if `v` is not one.
    pub fn from_json(v: &Value) -> Option<Atom> {
        Some(match v {
            Value::Bool(b) => Atom::Boolean(*b),
            Value::String(s) => Atom::String(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Atom::Integer(i),
                None => Atom::Real(n.as_f64()?),
            },
            Value::Array(a) if a.len() == 2 => match (a[0].as_str()?, a[1].as_str()?) {
                ("uuid", u) => Atom::Uuid(Uuid::parse(u)?),
                ("named-uuid", n) => Atom::NamedUuid(n.to_string()),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer atom.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The UUID, if this is a UUID atom.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom::String(s)
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Atom {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Atom {
        Atom::Uuid(u)
    }
}

/// A column value: a set (a scalar is a set of one, an absent optional value the empty set)
/// or a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datum {
    /// A set of atoms.
    Set(BTreeSet<Atom>),
    /// A map from key atoms to value atoms.
    Map(BTreeMap<Atom, Atom>),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(BTreeSet::new())
    }
}

impl Datum {
    /// A set of one atom.
    pub fn scalar(a: impl Into<Atom>) -> Datum {
        Datum::Set(BTreeSet::from([a.into()]))
    }

    /// The empty set (an unset optional column).
    pub fn empty() -> Datum {
        Datum::Set(BTreeSet::new())
    }

    /// A set from atoms.
    pub fn set<A: Into<Atom>>(atoms: impl IntoIterator<Item = A>) -> Datum {
        Datum::Set(atoms.into_iter().map(Into::into).collect())
    }

    /// An optional value: the empty set for `None`.
    pub fn optional<A: Into<Atom>>(a: Option<A>) -> Datum {
        Datum::set(a)
    }

    /// A map from pairs.
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Datum {
        Datum::Map(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// A string-to-string map.
    pub fn string_map(m: &BTreeMap<String, String>) -> Datum {
        Datum::map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The JSON form (RFC 7047 §5.1 `<value>`).
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(s) if s.len() == 1 => s.iter().next().expect("one element").to_json(),
            Datum::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Datum::Map(m) => {
                json!(["map", m.iter().map(|(k, v)| json!([k.to_json(), v.to_json()])).collect::<Vec<_>>()])
            }
        }
    }

    /// Decodes a `<value>`; `None` if `v` is not one.
    pub fn from_json(v: &Value) -> Option<Datum> {
        if let Value::Array(a) = v
            && a.len() == 2
        {
            match (a[0].as_str(), &a[1]) {
                (Some("set"), Value::Array(items)) => {
                    return items.iter().map(Atom::from_json).collect::<Option<_>>().map(Datum::Set);
                }
                (Some("map"), Value::Array(pairs)) => {
                    let mut m = BTreeMap::new();
                    for p in pairs {
                        let pair = p.as_array().filter(|p| p.len() == 2)?;
                        m.insert(Atom::from_json(&pair[0])?, Atom::from_json(&pair[1])?);
                    }
                    return Some(Datum::Map(m));
                }
                _ => {}
            }
        }
        Atom::from_json(v).map(Datum::scalar)
    }

    /// The atoms of a set (empty for a map).
    pub fn atoms(&self) -> impl Iterator<Item = &Atom> {
        let set = match self {
            Datum::Set(s) => Some(s.iter()),
            Datum::Map(_) => None,
        };
        set.into_iter().flatten()
    }

    /// The only atom of a one-element set.
    pub fn single(&self) -> Option<&Atom> {
        match self {
            Datum::Set(s) if s.len() == 1 => s.iter().next(),
            _ => None,
        }
    }

    /// The pairs of a map (empty for a set: an empty map may arrive as an empty set when
    /// decoded without a schema).
    pub fn pairs(&self) -> impl Iterator<Item = (&Atom, &Atom)> {
        let map = match self {
            Datum::Map(m) => Some(m.iter()),
            Datum::Set(_) => None,
        };
        map.into_iter().flatten()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Datum::Set(s) => s.len(),
            Datum::Map(m) => m.len(),
        }
    }

    /// Whether this is an empty set or map.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies an `update2` column diff (ovsdb-server(7) §4.1.14) for a column that holds
    /// more than one element: a set toggles each element of the diff; a map removes keys
    /// whose diff value equals the current value, and otherwise sets the diff's value.
    pub fn apply_diff(&mut self, diff: &Datum) {
        match (self, diff) {
            (Datum::Set(cur), Datum::Set(d)) => {
                for a in d {
                    if !cur.remove(a) {
                        cur.insert(a.clone());
                    }
                }
            }
            (Datum::Map(cur), Datum::Map(d)) => {
                for (k, v) in d {
                    if cur.get(k) == Some(v) {
                        cur.remove(k);
                    } else {
                        cur.insert(k.clone(), v.clone());
                    }
                }
            }
            // A map column that was empty may have decoded as an empty set.
            (cur @ Datum::Set(_), Datum::Map(d)) if cur.is_empty() => *cur = Datum::Map(d.clone()),
            (_, Datum::Set(d)) if d.is_empty() => {}
            (cur, d) => *cur = d.clone(),
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trips_through_text() {
        let s = "550e8400-e29b-41d4-a716-446655440000";
        assert_eq!(Uuid::parse(s).unwrap().to_string(), s);
        assert!(Uuid::parse("550e8400e29b-41d4-a716-4466554400000").is_none());
        assert!(Uuid::parse("550e8400-e29b-41d4-a716-44665544000g").is_none());
    }

    #[test]
    fn scalar_is_written_bare_and_other_sets_tagged() {
        assert_eq!(Datum::scalar("x").to_json(), json!("x"));
        assert_eq!(Datum::empty().to_json(), json!(["set", []]));
        assert_eq!(Datum::set(["a", "b"]).to_json(), json!(["set", ["a", "b"]]));
    }

    #[test]
    fn recorded_values_decode() {
        let v: Value =
            serde_json::from_str(r#"["map",[["iface-id","pod-a"],["attached-mac","aa:bb:cc:dd:ee:ff"]]]"#).unwrap();
        let d = Datum::from_json(&v).unwrap();
        assert_eq!(d.pairs().count(), 2);
        let u: Value = serde_json::from_str(r#"["set",[["uuid","0b3c6d1e-5e0c-4c5e-9e39-1d6b8e8f2f11"]]]"#).unwrap();
        assert_eq!(
            Datum::from_json(&u).unwrap().single().and_then(Atom::as_uuid).unwrap().to_string(),
            "0b3c6d1e-5e0c-4c5e-9e39-1d6b8e8f2f11"
        );
        assert_eq!(Datum::from_json(&json!(1.5)), Some(Datum::scalar(Atom::Real(1.5))));
        assert_eq!(Datum::from_json(&json!({"a": 1})), None);
        assert_eq!(Datum::from_json(&json!(["map", [["k"]]])), None);
    }

    #[test]
    fn set_diff_toggles_elements() {
        let mut d = Datum::set(["a", "b"]);
        d.apply_diff(&Datum::set(["b", "c"]));
        assert_eq!(d, Datum::set(["a", "c"]));
    }

    #[test]
    fn map_diff_removes_equal_and_replaces_changed() {
        let mut d = Datum::map([("a", "1"), ("b", "2")]);
        d.apply_diff(&Datum::map([("a", "1"), ("b", "3"), ("c", "4")]));
        assert_eq!(d, Datum::map([("b", "3"), ("c", "4")]));
    }
}
