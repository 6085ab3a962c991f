//! Port ranges as the fewest value/mask pairs OpenFlow can match (`tp_dst=0x1f40/0xffc0`).

/// One maskable port match: a port `p` matches when `p & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMask {
    /// The port bits that must match.
    pub value: u16,
    /// Which bits are compared; `0xffff` is an exact port.
    pub mask: u16,
}

/// Splits the inclusive range `lo..=hi` into the minimal list of aligned power-of-two blocks,
/// each one value/mask pair, in ascending order. An empty range (`lo > hi`) gives none.
pub fn port_masks(lo: u16, hi: u16) -> Vec<PortMask> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    while lo <= hi {
        // The largest block that starts at `lo` (alignment) and does not pass `hi`.
        let mut size = if lo == 0 { 1 << 16 } else { lo & lo.wrapping_neg() };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push(PortMask { value: lo as u16, mask: (!(size - 1)) as u16 });
        lo += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_port_is_exact() {
        assert_eq!(port_masks(80, 80), vec![PortMask { value: 80, mask: 0xffff }]);
    }

    #[test]
    fn whole_space_is_one_wildcard() {
        assert_eq!(port_masks(0, 65535), vec![PortMask { value: 0, mask: 0 }]);
    }

    #[test]
    fn aligned_block_is_one_mask() {
        assert_eq!(port_masks(8000, 8063), vec![PortMask { value: 8000, mask: 0xffc0 }]);
    }

    #[test]
    fn unaligned_range_splits_minimally() {
        // 1..=6 = {1}, {2,3}, {4,5}, {6}
        let got: Vec<_> = port_masks(1, 6).iter().map(|m| (m.value, m.mask)).collect();
        assert_eq!(got, vec![(1, 0xffff), (2, 0xfffe), (4, 0xfffe), (6, 0xffff)]);
    }

    proptest! {
        #[test]
        fn masks_cover_exactly_the_range(a in 0u16..=65535, b in 0u16..=65535, probe in 0u16..=65535) {
            let (lo, hi) = (a.min(b), a.max(b));
            let masks = port_masks(lo, hi);
            let hits = masks.iter().filter(|m| probe & m.mask == m.value).count();
            prop_assert_eq!(hits, usize::from((lo..=hi).contains(&probe)));
            prop_assert!(masks.len() <= 30);
        }
    }
}
