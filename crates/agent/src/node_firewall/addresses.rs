//! Address groups as disjoint, sorted, inclusive ranges per family: what an nftables interval
//! set holds. A block with exceptions becomes the block minus the exceptions, so one set
//! lookup decides a peer exactly (nftables sets cannot say "except").
use ipnetwork::IpNetwork;
use policy::netpol::IpBlock;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Inclusive ranges of IPv4 (as `u32`) and IPv6 (as `u128`) addresses, each list sorted,
/// disjoint and not adjacent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressRanges {
    /// IPv4 ranges.
    pub v4: Vec<(u32, u32)>,
    /// IPv6 ranges.
    pub v6: Vec<(u128, u128)>,
}

impl AddressRanges {
    /// The union of `blocks` (each minus its exceptions) and the single addresses `ips`.
    pub fn of(blocks: &[IpBlock], ips: impl IntoIterator<Item = IpAddr>) -> AddressRanges {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for b in blocks {
            match b.cidr {
                IpNetwork::V4(n) => v4.extend(minus(span4(n), b.except.iter().filter_map(|e| v4_of(e).map(span4)))),
                IpNetwork::V6(n) => v6.extend(minus(span6(n), b.except.iter().filter_map(|e| v6_of(e).map(span6)))),
            }
        }
        for ip in ips {
            match ip {
                IpAddr::V4(a) => v4.push((u32::from(a), u32::from(a))),
                IpAddr::V6(a) => v6.push((u128::from(a), u128::from(a))),
            }
        }
        AddressRanges { v4: merged(v4), v6: merged(v6) }
    }

    /// Whether no address is in it.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The IPv4 ranges as addresses.
    pub fn v4_addrs(&self) -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr)> + '_ {
        self.v4.iter().map(|&(a, b)| (Ipv4Addr::from(a), Ipv4Addr::from(b)))
    }

    /// The IPv6 ranges as addresses.
    pub fn v6_addrs(&self) -> impl Iterator<Item = (Ipv6Addr, Ipv6Addr)> + '_ {
        self.v6.iter().map(|&(a, b)| (Ipv6Addr::from(a), Ipv6Addr::from(b)))
    }
}

fn v4_of(n: &IpNetwork) -> Option<ipnetwork::Ipv4Network> {
    if let IpNetwork::V4(n) = n { Some(*n) } else { None }
}

fn v6_of(n: &IpNetwork) -> Option<ipnetwork::Ipv6Network> {
    if let IpNetwork::V6(n) = n { Some(*n) } else { None }
}

fn span4(n: ipnetwork::Ipv4Network) -> (u32, u32) {
    (u32::from(n.network()), u32::from(n.broadcast()))
}

fn span6(n: ipnetwork::Ipv6Network) -> (u128, u128) {
    let lo = u128::from(n.network());
    let host_bits = 128 - u32::from(n.prefix());
    let hi = if host_bits == 128 { u128::MAX } else { lo | ((1u128 << host_bits) - 1) };
    (lo, hi)
}

/// `whole` minus every range of `holes`.
fn minus<T: Copy + Ord + num_step::Step>(whole: (T, T), holes: impl Iterator<Item = (T, T)>) -> Vec<(T, T)> {
    let mut out = vec![whole];
    for (hl, hh) in holes {
        out = out
            .into_iter()
            .flat_map(|(l, h)| {
                let mut parts = Vec::new();
                if hh < l || hl > h {
                    parts.push((l, h));
                    return parts;
                }
                if hl > l {
                    parts.push((l, T::before(hl)));
                }
                if hh < h {
                    parts.push((T::after(hh), h));
                }
                parts
            })
            .collect();
    }
    out
}

/// Sorted, with overlapping and adjacent ranges joined (an interval set rejects overlaps).
fn merged<T: Copy + Ord + num_step::Step>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (l, h) in v {
        match out.last_mut() {
            Some(last) if last.1 == T::MAX || T::after(last.1) >= l => last.1 = last.1.max(h),
            _ => out.push((l, h)),
        }
    }
    out
}

/// The neighbours of an address number.
mod num_step {
    pub trait Step: Sized {
        const MAX: Self;
        fn before(self) -> Self;
        fn after(self) -> Self;
    }
    impl Step for u32 {
        const MAX: u32 = u32::MAX;
        fn before(self) -> u32 {
            self - 1
        }
        fn after(self) -> u32 {
            self.saturating_add(1)
        }
    }
    impl Step for u128 {
        const MAX: u128 = u128::MAX;
        fn before(self) -> u128 {
            self - 1
        }
        fn after(self) -> u128 {
            self.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cidr: &str, except: &[&str]) -> IpBlock {
        IpBlock { cidr: cidr.parse().unwrap(), except: except.iter().map(|e| e.parse().unwrap()).collect() }
    }

    #[test]
    fn a_block_minus_its_exceptions_is_the_ranges_around_them() {
        let r = AddressRanges::of(&[block("10.0.0.0/24", &["10.0.0.64/26"])], []);
        let got: Vec<String> = r.v4_addrs().map(|(a, b)| format!("{a}-{b}")).collect();
        assert_eq!(got, ["10.0.0.0-10.0.0.63", "10.0.0.128-10.0.0.255"]);
    }

    #[test]
    fn overlapping_and_adjacent_members_merge_into_one_range() {
        let ips = ["10.0.1.0".parse().unwrap(), "10.0.0.7".parse().unwrap()];
        let r = AddressRanges::of(&[block("10.0.0.0/24", &[])], ips);
        let got: Vec<String> = r.v4_addrs().map(|(a, b)| format!("{a}-{b}")).collect();
        assert_eq!(got, ["10.0.0.0-10.0.1.0"]);
    }

    #[test]
    fn the_whole_ipv6_space_is_one_range() {
        let r = AddressRanges::of(&[block("::/0", &[])], []);
        assert_eq!(r.v6, [(0, u128::MAX)]);
        assert!(r.v4.is_empty());
    }
}
