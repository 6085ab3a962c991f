//! Typed rows of the Open_vSwitch tables weir touches (vswitch.ovsschema 8.x), read from
//! untyped [`Row`]s. Only the columns weir uses are typed; the rest stay in the row.
use crate::datum::Uuid;
use crate::row::Row;
use crate::update::Database;
use std::collections::BTreeMap;

/// The database name.
pub const DB: &str = "Open_vSwitch";

/// A typed row of one table.
pub trait TableRow: Sized {
    /// The table's name.
    const TABLE: &'static str;
    /// Reads the typed row.
    fn from_row(uuid: Uuid, row: &Row) -> Self;

    /// Every row of the table in `db`.
    fn all(db: &Database) -> Vec<Self> {
        db.rows(Self::TABLE).map(|(u, r)| Self::from_row(*u, r)).collect()
    }

    /// The row of the table named `name` (for tables with a `name` column).
    fn named(db: &Database, name: &str) -> Option<Self> {
        db.find(Self::TABLE, "name", name).map(|(u, r)| Self::from_row(u, r))
    }
}

macro_rules! typed_row {
    ($(#[$m:meta])* $ty:ident = $table:literal { $($(#[$fm:meta])* $field:ident : $fty:ty = |$r:ident| $get:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $ty {
            /// The row's UUID.
            pub uuid: Uuid,
            $($(#[$fm])* pub $field: $fty,)*
        }
        impl TableRow for $ty {
            const TABLE: &'static str = $table;
            fn from_row(uuid: Uuid, row: &Row) -> Self {
                $(let $field = { let $r = row; $get };)*
                $ty { uuid, $($field),* }
            }
        }
    };
}

typed_row!(
    /// The root row.
    OpenVswitch = "Open_vSwitch" {
        /// The bridges.
        bridges: Vec<Uuid> = |r| r.uuids("bridges"),
        /// Managers (references to Manager rows).
        manager_options: Vec<Uuid> = |r| r.uuids("manager_options"),
        /// Configuration generation requested by clients.
        next_cfg: i64 = |r| r.opt_integer("next_cfg").unwrap_or(0),
        /// Configuration generation ovs-vswitchd has applied.
        cur_cfg: i64 = |r| r.opt_integer("cur_cfg").unwrap_or(0),
        /// The OVS version.
        ovs_version: Option<String> = |r| r.opt_str("ovs_version").map(str::to_string),
        /// Datapath types this ovs-vswitchd supports.
        datapath_types: Vec<String> = |r| r.strings("datapath_types"),
        /// Interface types this ovs-vswitchd supports.
        iface_types: Vec<String> = |r| r.strings("iface_types"),
        /// Other configuration (`flow-restore-wait`, ...).
        other_config: BTreeMap<String, String> = |r| r.string_map("other_config"),
        /// External ids.
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

typed_row!(
    /// A bridge.
    Bridge = "Bridge" {
        /// Name (unique).
        name: String = |r| r.str("name").to_string(),
        /// `system` or `netdev` (empty means `system`).
        datapath_type: String = |r| r.str("datapath_type").to_string(),
        /// Allowed OpenFlow versions.
        protocols: Vec<String> = |r| r.strings("protocols"),
        /// `secure` or `standalone`.
        fail_mode: Option<String> = |r| r.opt_str("fail_mode").map(str::to_string),
        /// Ports.
        ports: Vec<Uuid> = |r| r.uuids("ports"),
        /// Mirrors.
        mirrors: Vec<Uuid> = |r| r.uuids("mirrors"),
        /// Controllers.
        controller: Vec<Uuid> = |r| r.uuids("controller"),
        /// OpenFlow table id → Flow_Table row.
        flow_tables: BTreeMap<i64, Uuid> = |r| r.integer_uuid_map("flow_tables"),
        /// Other configuration.
        other_config: BTreeMap<String, String> = |r| r.string_map("other_config"),
        /// External ids.
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

typed_row!(
    /// A port (one or more interfaces).
    Port = "Port" {
        /// Name (unique in the database).
        name: String = |r| r.str("name").to_string(),
        /// Interfaces.
        interfaces: Vec<Uuid> = |r| r.uuids("interfaces"),
        /// VLAN tag.
        tag: Option<i64> = |r| r.opt_integer("tag"),
        /// Other configuration.
        other_config: BTreeMap<String, String> = |r| r.string_map("other_config"),
        /// External ids.
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

typed_row!(
    /// An interface (what the datapath sees; carries the OpenFlow port number).
    Interface = "Interface" {
        /// Name (unique in the database).
        name: String = |r| r.str("name").to_string(),
        /// Type: `""`/`system`, `internal`, `patch`, `vxlan`, `geneve`, `gre`, `erspan`...
        iface_type: String = |r| r.str("type").to_string(),
        /// Type-specific options (tunnel endpoints, patch peer...).
        options: BTreeMap<String, String> = |r| r.string_map("options"),
        /// OpenFlow port number (`-1` when it could not be created; absent until assigned).
        ofport: Option<i64> = |r| r.opt_integer("ofport"),
        /// Requested OpenFlow port number.
        ofport_request: Option<i64> = |r| r.opt_integer("ofport_request"),
        /// Requested MTU.
        mtu_request: Option<i64> = |r| r.opt_integer("mtu_request"),
        /// Current MTU.
        mtu: Option<i64> = |r| r.opt_integer("mtu"),
        /// Requested MAC (internal ports).
        mac: Option<String> = |r| r.opt_str("mac").map(str::to_string),
        /// MAC address in use.
        mac_in_use: Option<String> = |r| r.opt_str("mac_in_use").map(str::to_string),
        /// Why ovs-vswitchd could not configure the interface.
        error: Option<String> = |r| r.opt_str("error").map(str::to_string),
        /// Link state (`up`/`down`).
        link_state: Option<String> = |r| r.opt_str("link_state").map(str::to_string),
        /// External ids (the CNI contract: pod namespace, name, IPs, MAC).
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

typed_row!(
    /// A port mirror.
    Mirror = "Mirror" {
        /// Name.
        name: String = |r| r.str("name").to_string(),
        /// Mirror every packet.
        select_all: bool = |r| r.boolean("select_all"),
        /// Ports whose received packets are mirrored.
        select_src_port: Vec<Uuid> = |r| r.uuids("select_src_port"),
        /// Ports whose sent packets are mirrored.
        select_dst_port: Vec<Uuid> = |r| r.uuids("select_dst_port"),
        /// The port mirrored packets go out of.
        output_port: Option<Uuid> = |r| r.opt_uuid("output_port"),
        /// External ids.
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

typed_row!(
    /// An OpenFlow table's configuration (its name shows in `ovs-ofctl dump-flows`).
    FlowTable = "Flow_Table" {
        /// Table name.
        name: Option<String> = |r| r.opt_str("name").map(str::to_string),
        /// Flow limit.
        flow_limit: Option<i64> = |r| r.opt_integer("flow_limit"),
        /// External ids.
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

typed_row!(
    /// An OpenFlow controller of a bridge.
    Controller = "Controller" {
        /// Target, e.g. `tcp:127.0.0.1:6653` or `punix:/run/weir.sock`.
        target: String = |r| r.str("target").to_string(),
        /// Whether ovs-vswitchd is connected to it.
        is_connected: bool = |r| r.boolean("is_connected"),
        /// External ids.
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

typed_row!(
    /// An OVSDB manager connection of ovsdb-server.
    Manager = "Manager" {
        /// Target, e.g. `ptcp:6640`.
        target: String = |r| r.str("target").to_string(),
        /// Whether connected.
        is_connected: bool = |r| r.boolean("is_connected"),
        /// External ids.
        external_ids: BTreeMap<String, String> = |r| r.string_map("external_ids"),
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn recorded_bridge_row_reads_typed() {
        let v: Value = serde_json::from_str(
            r#"{"name":"br-int","datapath_type":"netdev","protocols":"OpenFlow15","fail_mode":"secure",
                "ports":["set",[["uuid","3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01"],["uuid","3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b02"]]],
                "flow_tables":["map",[[0,["uuid","3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b03"]]]],
                "other_config":["map",[["disable-in-band","true"]]],"controller":["set",[]]}"#,
        )
        .unwrap();
        let b = Bridge::from_row(Uuid(1), &Row::from_json(&v).unwrap());
        assert_eq!(b.protocols, vec!["OpenFlow15"]);
        assert_eq!(b.fail_mode.as_deref(), Some("secure"));
        assert_eq!(b.ports.len(), 2);
        assert_eq!(b.flow_tables.keys().copied().collect::<Vec<_>>(), vec![0]);
        assert!(b.controller.is_empty());
    }
}
