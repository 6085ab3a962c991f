//! The rtnetlink connection of a task that configures links, addresses and routes (the host
//! gateway, ExternalNode interfaces).

/// A connection for a task of `who`, its driver spawned beside it; `None`, logged, when no
/// netlink socket can be opened (the task then cannot configure anything).
pub fn connect(who: &str) -> Option<rtnetlink::Handle> {
    match rtnetlink::new_connection() {
        Ok((conn, handle, _)) => {
            tokio::spawn(conn);
            Some(handle)
        }
        Err(e) => {
            tracing::error!("{who}: cannot open a netlink socket: {e}");
            None
        }
    }
}
