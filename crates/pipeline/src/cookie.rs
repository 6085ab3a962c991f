//! Flow cookies: which part of weir owns a flow and for which object.
//!
//! ```text
//!  63      56 55      48 47                    32 31                             0
//! +----------+----------+------------------------+--------------------------------+
//! | 0x57 'W' | category |        reserved        |     object (conj_id, or 0)     |
//! +----------+----------+------------------------+--------------------------------+
//! ```
//! The top byte marks the flow as weir's; the agent's diff owns every flow on its bridge, so
//! the cookie serves people reading `dump-flows` and `del-flows cookie=.../mask`.

/// Which feature installed a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Category {
    /// Table-miss and fixed pipeline flows.
    Pipeline = 1,
    /// Pod and node forwarding.
    Forwarding = 2,
    /// NetworkPolicy rules and isolation.
    NetworkPolicy = 3,
    /// Flows the switch learned (SCTP replies): not part of the desired state.
    Learned = 4,
    /// TrafficControl mirror and redirect.
    TrafficControl = 5,
    /// Admin and baseline tier rules (AdminNetworkPolicy, ClusterNetworkPolicy, baseline).
    ClusterPolicy = 6,
}

/// The mark in the top byte of every weir cookie.
pub const WEIR_MARK: u64 = 0x57 << 56;

/// The cookie of a flow of `category` about `object` (a conj_id, or 0 for shared flows).
pub fn cookie(category: Category, object: u32) -> u64 {
    WEIR_MARK | (category as u64) << 48 | u64::from(object)
}

/// The object of a weir cookie (a conj_id, or 0 for shared flows).
pub fn object_of(cookie: u64) -> u32 {
    (cookie & 0xffff_ffff) as u32
}

/// The mask that selects every flow of one category (with [`cookie`]`(category, 0)`).
pub const CATEGORY_MASK: u64 = 0xffff_0000_0000_0000;

/// The category of a weir cookie.
pub fn category_of(cookie: u64) -> Option<Category> {
    if cookie & 0xff << 56 != WEIR_MARK {
        return None;
    }
    [Category::Pipeline, Category::Forwarding, Category::NetworkPolicy, Category::Learned, Category::TrafficControl,
     Category::ClusterPolicy]
        .into_iter()
        .find(|c| (cookie >> 48) & 0xff == *c as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trips_its_category_and_object() {
        let c = cookie(Category::NetworkPolicy, 0x1234);
        assert_eq!(category_of(c), Some(Category::NetworkPolicy));
        assert_eq!(object_of(c), 0x1234);
        assert_eq!(c & CATEGORY_MASK, cookie(Category::NetworkPolicy, 0));
    }

    #[test]
    fn foreign_cookies_have_no_category() {
        assert_eq!(category_of(0x1), None);
    }
}
