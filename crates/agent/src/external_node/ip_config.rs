//! A host interface's IPv4 configuration as netlink holds it: its addresses (with their flags
//! and remaining lifetimes) and the routes of every table that leave through it. Read from one
//! device and put on another through rtnetlink, each message as the kernel gave it with only
//! the interface index changed (what `ip route save` / `ip route restore` do), so no attribute
//! weir does not know about is lost on the way.
//!
//! Routes the kernel makes by itself are left out: the prefix and local routes of each address
//! (protocol `kernel`), which the kernel makes again when the address is added elsewhere.
use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_core::{Emitable, Parseable};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, CacheInfo};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteProtocol, RouteScope};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// An address lifetime that never runs out (`forever`).
const FOREVER: u32 = u32::MAX;

/// One interface's IPv4 addresses and routes, as raw netlink messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `RTM_NEWADDR` messages, in the kernel's order (the primary address first).
    #[serde(with = "messages")]
    pub addresses: Vec<Vec<u8>>,
    /// `RTM_NEWROUTE` messages of every table.
    #[serde(with = "messages")]
    pub routes: Vec<Vec<u8>>,
    /// Seconds since the Unix epoch when it was read: the addresses' lifetimes count from then.
    pub read_at: u64,
}

/// What netlink refused, with what weir was doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {error}")]
pub struct NetlinkError {
    /// What weir was doing.
    pub what: String,
    /// What netlink said.
    pub error: String,
}

fn failed(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |e| NetlinkError { what, error: e.to_string() }
}

impl IpConfig {
    /// Reads the IPv4 addresses of the device with index `index` and the routes through it.
    pub async fn read(handle: &Handle, index: u32, name: &str) -> Result<IpConfig, NetlinkError> {
        let mut addresses = vec![];
        let mut dump = handle.address().get().set_link_index_filter(index).execute();
        while let Some(msg) = dump.try_next().await.map_err(failed(format!("list the addresses of {name}")))? {
            if msg.header.family == AddressFamily::Inet && msg.header.index == index {
                addresses.push(encode(&msg));
            }
        }
        let mut routes = vec![];
        let mut dump = handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        while let Some(msg) = dump.try_next().await.map_err(failed("list the routes"))? {
            if leaves_through(&msg, index) && msg.header.protocol != RouteProtocol::Kernel {
                routes.push(encode(&msg));
            }
        }
        Ok(IpConfig { addresses, routes, read_at: now() })
    }

    /// Whether it holds no address.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The addresses, decoded.
    pub fn address_messages(&self) -> Vec<AddressMessage> {
        self.addresses.iter().filter_map(|b| AddressMessage::parse(b.as_slice()).ok()).collect()
    }

    /// The routes, decoded.
    pub fn route_messages(&self) -> Vec<RouteMessage> {
        self.routes.iter().filter_map(|b| RouteMessage::parse(b.as_slice()).ok()).collect()
    }

    /// The IPv4 addresses, without prefix.
    pub fn ips(&self) -> Vec<Ipv4Addr> {
        self.address_messages().iter().filter_map(address_of).collect()
    }

    /// The same configuration with each address labelled as in `original` (the label of the
    /// same address there, else `name`): renaming a device renames its addresses' labels
    /// (`eth0~`, `eth0~:2`), and the internal port must show the labels the NIC had.
    pub fn labelled_as(&self, original: &IpConfig, name: &str) -> IpConfig {
        let labels: std::collections::BTreeMap<Ipv4Addr, String> =
            original.address_messages().iter().filter_map(|m| Some((address_of(m)?, label_of(m)?))).collect();
        let addresses = self
            .address_messages()
            .into_iter()
            .map(|mut m| {
                let label = address_of(&m).and_then(|ip| labels.get(&ip).cloned()).unwrap_or_else(|| name.to_string());
                m.attributes.retain(|a| !matches!(a, AddressAttribute::Label(_)));
                m.attributes.push(AddressAttribute::Label(label));
                encode(&m)
            })
            .collect();
        IpConfig { addresses, routes: self.routes.clone(), read_at: self.read_at }
    }

    /// Puts the addresses, then the routes (link-scope ones before those through a gateway,
    /// which need them), on the device with index `index`, replacing equal ones, so putting
    /// the same configuration twice changes nothing. An address's lifetimes are what remained
    /// when it was read less the time since; an address that ran out meanwhile is left out.
    pub async fn put(&self, handle: &Handle, index: u32, name: &str) -> Result<(), NetlinkError> {
        let elapsed = u32::try_from(now().saturating_sub(self.read_at)).unwrap_or(FOREVER);
        for mut msg in self.address_messages() {
            let Some(ip) = address_of(&msg) else { continue };
            if !age(&mut msg, elapsed) {
                tracing::warn!(address = %ip, device = name, "the address's lifetime ran out: not put back");
                continue;
            }
            msg.header.index = index;
            let mut req = handle.address().add(index, IpAddr::V4(ip), msg.header.prefix_len).replace();
            *req.message_mut() = msg;
            req.execute().await.map_err(failed(format!("add {ip} to {name}")))?;
        }
        let mut routes = self.route_messages();
        // Host and link scope (larger numbers) first.
        routes.sort_by_key(|r| std::cmp::Reverse(u8::from(r.header.scope)));
        for mut msg in routes {
            let text = describe_route(&msg);
            for a in &mut msg.attributes {
                if let RouteAttribute::Oif(i) = a {
                    *i = index;
                }
            }
            handle.route().add(msg).replace().execute().await.map_err(failed(format!("add the route {text} on {name}")))?;
        }
        Ok(())
    }

    /// Removes the routes and then the addresses that [`IpConfig::read`] found on a device.
    pub async fn remove(&self, handle: &Handle, name: &str) -> Result<(), NetlinkError> {
        for msg in self.route_messages() {
            let text = describe_route(&msg);
            ignore_gone(handle.route().del(msg).execute().await).map_err(failed(format!("remove the route {text} from {name}")))?;
        }
        for msg in self.address_messages() {
            let ip = address_of(&msg).map_or_else(String::new, |ip| ip.to_string());
            ignore_gone(handle.address().del(msg).execute().await).map_err(failed(format!("remove {ip} from {name}")))?;
        }
        Ok(())
    }
}

/// Whether the route is IPv4, a real one (not a cached clone), and leaves through `index`.
fn leaves_through(msg: &RouteMessage, index: u32) -> bool {
    msg.header.address_family == AddressFamily::Inet && msg.attributes.iter().any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index))
}

/// Takes `elapsed` seconds off the address's lifetimes; `false` if it has run out.
fn age(msg: &mut AddressMessage, elapsed: u32) -> bool {
    for a in &mut msg.attributes {
        if let AddressAttribute::CacheInfo(ci) = a {
            if ci.ifa_valid == FOREVER {
                return true;
            }
            if ci.ifa_valid <= elapsed {
                return false;
            }
            let mut aged = CacheInfo::default();
            aged.ifa_valid = ci.ifa_valid - elapsed;
            aged.ifa_preferred = if ci.ifa_preferred == FOREVER { FOREVER } else { ci.ifa_preferred.saturating_sub(elapsed) };
            *ci = aged;
        }
    }
    true
}

/// A route in `ip route` words, for messages.
pub fn describe_route(msg: &RouteMessage) -> String {
    use rtnetlink::packet_route::route::RouteAddress;
    let mut dst = "default".to_string();
    let mut words = vec![];
    for a in &msg.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = format!("{d}/{}", msg.header.destination_prefix_length),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => words.push(format!("via {g}")),
            RouteAttribute::PrefSource(RouteAddress::Inet(s)) => words.push(format!("src {s}")),
            RouteAttribute::Priority(p) => words.push(format!("metric {p}")),
            RouteAttribute::Table(t) => words.push(format!("table {t}")),
            _ => {}
        }
    }
    if msg.header.scope != RouteScope::Universe {
        words.push(format!("scope {:?}", msg.header.scope).to_lowercase());
    }
    std::iter::once(dst).chain(words).collect::<Vec<_>>().join(" ")
}

/// The IPv4 address of an address message.
pub fn address_of(msg: &AddressMessage) -> Option<Ipv4Addr> {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
            _ => None,
        })
        .or_else(|| {
            msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            })
        })
}

fn label_of(msg: &AddressMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Label(l) => Some(l.clone()),
        _ => None,
    })
}

/// Deleting what is already gone (ESRCH, EADDRNOTAVAIL, ENODEV) is no failure: the kernel
/// removes routes with their address or device.
fn ignore_gone(r: Result<(), rtnetlink::Error>) -> Result<(), rtnetlink::Error> {
    match r {
        Err(rtnetlink::Error::NetlinkError(e))
            if matches!(e.raw_code().abs(), libc_codes::ESRCH | libc_codes::EADDRNOTAVAIL | libc_codes::ENODEV) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The errno values [`ignore_gone`] accepts (Linux numbers).
mod libc_codes {
    pub(super) const ESRCH: i32 = 3;
    pub(super) const ENODEV: i32 = 19;
    pub(super) const EADDRNOTAVAIL: i32 = 99;
}

fn encode<T: Emitable>(msg: &T) -> Vec<u8> {
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    buf
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Raw messages as lower-case hex strings in the state file.
mod messages {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(msgs: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(msgs.iter().map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                (0..t.len())
                    .step_by(2)
                    .map(|i| t.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| serde::de::Error::custom(format!("not a hex netlink message: {t:?}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_loses_the_time_that_passed_and_one_that_ran_out_is_left_out() {
        let mut ci = CacheInfo::default();
        ci.ifa_valid = 120;
        ci.ifa_preferred = 100;
        let mut msg = AddressMessage::default();
        msg.attributes.push(AddressAttribute::CacheInfo(ci));
        assert!(age(&mut msg, 30));
        let AddressAttribute::CacheInfo(aged) = msg.attributes[0] else { unreachable!() };
        assert_eq!((aged.ifa_valid, aged.ifa_preferred), (90, 70));
        assert!(!age(&mut msg, 90), "90 s left, 90 s passed: gone");
        let mut forever = CacheInfo::default();
        forever.ifa_valid = FOREVER;
        forever.ifa_preferred = FOREVER;
        let mut permanent = AddressMessage::default();
        permanent.attributes.push(AddressAttribute::CacheInfo(forever));
        assert!(age(&mut permanent, 1_000_000));
        assert_eq!(permanent.attributes[0], AddressAttribute::CacheInfo(forever));
    }

    #[test]
    fn messages_survive_the_state_file() {
        let config = IpConfig { addresses: vec![vec![2, 24, 0x80, 0, 7, 0, 0, 0]], routes: vec![vec![]], read_at: 5 };
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains("\"0218800007000000\""), "{text}");
        assert_eq!(serde_json::from_str::<IpConfig>(&text).unwrap(), config);
        assert!(serde_json::from_str::<IpConfig>(r#"{"addresses":["0g"],"routes":[],"read_at":0}"#).is_err());
    }
}
