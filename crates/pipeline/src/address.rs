//! Address blocks with exceptions, turned into plain CIDRs OpenFlow can match.
//!
//! `ipBlock {cidr, except}` becomes the CIDRs of the difference, so a peer clause is a plain
//! list of prefix matches and needs no exception flows at other priorities.

use ipnetwork::IpNetwork;
use std::net::IpAddr;

/// The CIDRs covering `cidr` minus every network in `except`, as few as possible, sorted.
pub fn subtract(cidr: IpNetwork, except: &[IpNetwork]) -> Vec<IpNetwork> {
    let cidr = canonical(cidr);
    let mut out = Vec::new();
    split(cidr, except, &mut out);
    out.sort();
    out
}

/// `net` with host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`).
pub fn canonical(net: IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).expect("prefix of a valid network stays valid")
}

fn split(net: IpNetwork, except: &[IpNetwork], out: &mut Vec<IpNetwork>) {
    let overlapping: Vec<IpNetwork> =
        except.iter().copied().filter(|e| same_family(net, *e) && overlaps(net, *e)).collect();
    if overlapping.is_empty() {
        out.push(net);
        return;
    }
    if overlapping.iter().any(|e| e.prefix() <= net.prefix()) {
        return; // an exception covers all of `net`
    }
    let (low, high) = halves(net);
    split(low, &overlapping, out);
    split(high, &overlapping, out);
}

fn same_family(a: IpNetwork, b: IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn overlaps(a: IpNetwork, b: IpNetwork) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

fn halves(net: IpNetwork) -> (IpNetwork, IpNetwork) {
    let prefix = net.prefix() + 1;
    let low = IpNetwork::new(net.network(), prefix).expect("longer prefix is valid");
    let high_addr = match net.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) | (1u32 << (32 - u32::from(prefix)))).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) | (1u128 << (128 - u32::from(prefix)))).into()),
    };
    (low, IpNetwork::new(high_addr, prefix).expect("longer prefix is valid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn no_exception_keeps_the_block() {
        assert_eq!(subtract(net("10.1.2.3/8"), &[]), vec![net("10.0.0.0/8")]);
    }

    #[test]
    fn exception_covering_the_block_leaves_nothing() {
        assert!(subtract(net("10.1.0.0/16"), &[net("10.0.0.0/8")]).is_empty());
    }

    #[test]
    fn one_host_out_of_a_slash_30() {
        let got = subtract(net("10.0.0.0/30"), &[net("10.0.0.2/32")]);
        assert_eq!(got, vec![net("10.0.0.0/31"), net("10.0.0.3/32")]);
    }

    #[test]
    fn slash_16_out_of_a_slash_8_gives_eight_blocks() {
        assert_eq!(subtract(net("10.0.0.0/8"), &[net("10.1.0.0/16")]).len(), 8);
    }

    proptest! {
        #[test]
        fn difference_matches_membership(
            base in 0u32..=u32::MAX, plen in 0u8..=32,
            ex in proptest::collection::vec((0u32..=u32::MAX, 0u8..=32), 0..4),
            probe in 0u32..=u32::MAX,
        ) {
            let cidr = IpNetwork::new(Ipv4Addr::from(base).into(), plen).unwrap();
            let except: Vec<IpNetwork> =
                ex.iter().map(|(a, p)| IpNetwork::new(Ipv4Addr::from(*a).into(), *p).unwrap()).collect();
            let probe = IpAddr::V4(probe.into());
            let want = cidr.contains(probe) && !except.iter().any(|e| e.contains(probe));
            let got = subtract(cidr, &except);
            prop_assert_eq!(got.iter().filter(|n| n.contains(probe)).count(), usize::from(want));
        }
    }
}
