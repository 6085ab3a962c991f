//! Protocol code lists, each declared once: message types, multipart types, error types and
//! codes (names and texts as OVS gives them in `include/openvswitch/ofp-errors.h`).

macro_rules! codes {
    ($(#[$doc:meta])* $modname:ident: $t:ty { $($name:ident = $val:expr),* $(,)? }) => {
        $(#[$doc])*
        #[allow(missing_docs)]
        pub mod $modname {
            $(pub const $name: $t = $val;)*
            /// The code's name, if known.
            pub fn name(code: $t) -> Option<&'static str> {
                match code {
                    $($val => Some(stringify!($name)),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// OpenFlow 1.5 message types (OFPT_*).
    msg_type: u8 {
        HELLO = 0, ERROR = 1, ECHO_REQUEST = 2, ECHO_REPLY = 3, EXPERIMENTER = 4,
        FEATURES_REQUEST = 5, FEATURES_REPLY = 6, GET_CONFIG_REQUEST = 7, GET_CONFIG_REPLY = 8,
        SET_CONFIG = 9, PACKET_IN = 10, FLOW_REMOVED = 11, PORT_STATUS = 12, PACKET_OUT = 13,
        FLOW_MOD = 14, GROUP_MOD = 15, PORT_MOD = 16, TABLE_MOD = 17, MULTIPART_REQUEST = 18,
        MULTIPART_REPLY = 19, BARRIER_REQUEST = 20, BARRIER_REPLY = 21, ROLE_REQUEST = 24,
        ROLE_REPLY = 25, GET_ASYNC_REQUEST = 26, GET_ASYNC_REPLY = 27, SET_ASYNC = 28,
        METER_MOD = 29, ROLE_STATUS = 30, TABLE_STATUS = 31, REQUESTFORWARD = 32,
        BUNDLE_CONTROL = 33, BUNDLE_ADD_MESSAGE = 34, CONTROLLER_STATUS = 35,
    }
}

codes! {
    /// Multipart types (OFPMP_*).
    multipart_type: u16 {
        DESC = 0, FLOW_DESC = 1, AGGREGATE_STATS = 2, TABLE_STATS = 3, PORT_STATS = 4,
        QUEUE_STATS = 5, GROUP_STATS = 6, GROUP_DESC = 7, GROUP_FEATURES = 8, METER_STATS = 9,
        METER_DESC = 10, METER_FEATURES = 11, TABLE_FEATURES = 12, PORT_DESC = 13,
        TABLE_DESC = 14, QUEUE_DESC = 15, FLOW_MONITOR = 16, FLOW_STATS = 17,
        CONTROLLER_STATUS = 18, BUNDLE_FEATURES = 19, EXPERIMENTER = 0xffff,
    }
}

codes! {
    /// Error types (OFPET_*).
    error_type: u16 {
        HELLO_FAILED = 0, BAD_REQUEST = 1, BAD_ACTION = 2, BAD_INSTRUCTION = 3, BAD_MATCH = 4,
        FLOW_MOD_FAILED = 5, GROUP_MOD_FAILED = 6, PORT_MOD_FAILED = 7, TABLE_MOD_FAILED = 8,
        QUEUE_OP_FAILED = 9, SWITCH_CONFIG_FAILED = 10, ROLE_REQUEST_FAILED = 11,
        METER_MOD_FAILED = 12, TABLE_FEATURES_FAILED = 13, BAD_PROPERTY = 14,
        ASYNC_CONFIG_FAILED = 15, FLOW_MONITOR_FAILED = 16, BUNDLE_FAILED = 17,
        EXPERIMENTER = 0xffff,
    }
}

/// The Nicira experimenter id.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
/// The ONF experimenter id.
pub const ONF_VENDOR_ID: u32 = 0x4f4e_4600;

/// One error code in OpenFlow 1.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// OFPET_* (0xffff for experimenter errors).
    pub etype: u16,
    /// The code (the experimenter's code for experimenter errors).
    pub code: u16,
    /// The experimenter id, 0 for standard errors.
    pub experimenter: u32,
    /// OVS's name (`OFPBAC_BAD_OUT_PORT`).
    pub name: &'static str,
    /// OVS's one-line description.
    pub text: &'static str,
}

/// Looks an error up by type, code and experimenter.
pub fn error_code(etype: u16, code: u16, experimenter: u32) -> Option<&'static ErrorCode> {
    ERROR_CODES.iter().find(|e| e.etype == etype && e.code == code && e.experimenter == experimenter)
}

/// The OpenFlow 1.5 errors, as listed in OVS's `ofp-errors.h`.
pub static ERROR_CODES: &[ErrorCode] = &[
    ErrorCode { etype: 0x0, code: 0, experimenter: 0x0, name: "OFPHFC_INCOMPATIBLE", text: "No compatible version" },
    ErrorCode { etype: 0x0, code: 1, experimenter: 0x0, name: "OFPHFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x1, code: 0, experimenter: 0x0, name: "OFPBRC_BAD_VERSION", text: "ofp_header.version not supported" },
    ErrorCode { etype: 0x1, code: 1, experimenter: 0x0, name: "OFPBRC_BAD_TYPE", text: "ofp_header.type not supported" },
    ErrorCode { etype: 0x1, code: 2, experimenter: 0x0, name: "OFPBRC_BAD_STAT", text: "ofp_stats_msg.type not supported" },
    ErrorCode { etype: 0x1, code: 3, experimenter: 0x0, name: "OFPBRC_BAD_VENDOR", text: "Vendor not supported (in ofp_vendor_header or * ofp_stats_msg)" },
    ErrorCode { etype: 0x1, code: 4, experimenter: 0x0, name: "OFPBRC_BAD_SUBTYPE", text: "Vendor subtype not supported" },
    ErrorCode { etype: 0x1, code: 5, experimenter: 0x0, name: "OFPBRC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x1, code: 6, experimenter: 0x0, name: "OFPBRC_BAD_LEN", text: "Wrong request length for type" },
    ErrorCode { etype: 0x1, code: 7, experimenter: 0x0, name: "OFPBRC_BUFFER_EMPTY", text: "Specified buffer has already been used" },
    ErrorCode { etype: 0x1, code: 8, experimenter: 0x0, name: "OFPBRC_BUFFER_UNKNOWN", text: "Specified buffer does not exist" },
    ErrorCode { etype: 0x1, code: 9, experimenter: 0x0, name: "OFPBRC_BAD_TABLE_ID", text: "Specified table-id invalid or does not exist" },
    ErrorCode { etype: 0x1, code: 10, experimenter: 0x0, name: "OFPBRC_IS_SECONDARY", text: "Denied because controller has secondary * role" },
    ErrorCode { etype: 0x1, code: 11, experimenter: 0x0, name: "OFPBRC_BAD_PORT", text: "Invalid or missing port" },
    ErrorCode { etype: 0x1, code: 12, experimenter: 0x0, name: "OFPBRC_BAD_PACKET", text: "Invalid packet in packet-out" },
    ErrorCode { etype: 0x1, code: 13, experimenter: 0x0, name: "OFPBRC_MULTIPART_BUFFER_OVERFLOW", text: "Multipart request overflowed the assigned buffer" },
    ErrorCode { etype: 0x1, code: 14, experimenter: 0x0, name: "OFPBRC_MULTIPART_REQUEST_TIMEOUT", text: "Timeout during multipart request" },
    ErrorCode { etype: 0x1, code: 15, experimenter: 0x0, name: "OFPBRC_MULTIPART_REPLY_TIMEOUT", text: "Timeout during multipart reply" },
    ErrorCode { etype: 0x1, code: 16, experimenter: 0x0, name: "OFPBRC_MULTIPART_BAD_SCHED", text: "Switch received a OFPMP_BUNDLE_FEATURES request and * failed to update the scheduling tolerance" },
    ErrorCode { etype: 0x1, code: 17, experimenter: 0x0, name: "OFPBRC_PIPELINE_FIELDS_ONLY", text: "Match fields must include only pipeline fields" },
    ErrorCode { etype: 0x1, code: 18, experimenter: 0x0, name: "OFPBRC_UNKNOWN", text: "Unspecified error" },
    ErrorCode { etype: 0xffff, code: 2, experimenter: 0x2320, name: "NXBRC_NXM_INVALID", text: "Invalid NXM flow match" },
    ErrorCode { etype: 0xffff, code: 3, experimenter: 0x2320, name: "NXBRC_NXM_BAD_TYPE", text: "The nxm_type, or nxm_type taken in * combination with nxm_hasmask or nxm_length or both, is invalid or not * implemented" },
    ErrorCode { etype: 0xffff, code: 4, experimenter: 0x2320, name: "NXBRC_MUST_BE_ZERO", text: "Must-be-zero field had nonzero value" },
    ErrorCode { etype: 0xffff, code: 5, experimenter: 0x2320, name: "NXBRC_BAD_REASON", text: "The reason in an ofp_port_status message * is not valid" },
    ErrorCode { etype: 0xffff, code: 9, experimenter: 0x2320, name: "NXBRC_FM_BAD_EVENT", text: "The 'event' in an NXST_FLOW_MONITOR reply * does not specify one of the NXFME_ABBREV, NXFME_ADD, NXFME_DELETE, or * NXFME_MODIFY" },
    ErrorCode { etype: 0xffff, code: 10, experimenter: 0x2320, name: "NXBRC_UNENCODABLE_ERROR", text: "The error that occurred cannot be * represented in this OpenFlow version" },
    ErrorCode { etype: 0x2, code: 0, experimenter: 0x0, name: "OFPBAC_BAD_TYPE", text: "Unknown or unsupported action type" },
    ErrorCode { etype: 0x2, code: 1, experimenter: 0x0, name: "OFPBAC_BAD_LEN", text: "Length problem in actions" },
    ErrorCode { etype: 0x2, code: 2, experimenter: 0x0, name: "OFPBAC_BAD_VENDOR", text: "Unknown experimenter id specified" },
    ErrorCode { etype: 0x2, code: 3, experimenter: 0x0, name: "OFPBAC_BAD_VENDOR_TYPE", text: "Unknown action type for experimenter id" },
    ErrorCode { etype: 0x2, code: 4, experimenter: 0x0, name: "OFPBAC_BAD_OUT_PORT", text: "Problem validating output port" },
    ErrorCode { etype: 0x2, code: 5, experimenter: 0x0, name: "OFPBAC_BAD_ARGUMENT", text: "Bad action argument" },
    ErrorCode { etype: 0x2, code: 6, experimenter: 0x0, name: "OFPBAC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x2, code: 7, experimenter: 0x0, name: "OFPBAC_TOO_MANY", text: "Can't handle this many actions" },
    ErrorCode { etype: 0x2, code: 8, experimenter: 0x0, name: "OFPBAC_BAD_QUEUE", text: "Problem validating output queue" },
    ErrorCode { etype: 0x2, code: 9, experimenter: 0x0, name: "OFPBAC_BAD_OUT_GROUP", text: "Invalid group id in output action" },
    ErrorCode { etype: 0x2, code: 10, experimenter: 0x0, name: "OFPBAC_MATCH_INCONSISTENT", text: "Action can't apply for this match or a * prerequisite for use of this field is unmet" },
    ErrorCode { etype: 0x2, code: 11, experimenter: 0x0, name: "OFPBAC_UNSUPPORTED_ORDER", text: "Action order is unsupported for the action list in an * Apply-Actions instruction" },
    ErrorCode { etype: 0x2, code: 12, experimenter: 0x0, name: "OFPBAC_BAD_TAG", text: "Actions uses an unsupported tag/encap" },
    ErrorCode { etype: 0x2, code: 13, experimenter: 0x0, name: "OFPBAC_BAD_SET_TYPE", text: "Action uses unknown or unsupported OXM * or NXM field" },
    ErrorCode { etype: 0x2, code: 14, experimenter: 0x0, name: "OFPBAC_BAD_SET_LEN", text: "Action references past the end of an * OXM or NXM field, or uses a length of zero" },
    ErrorCode { etype: 0x2, code: 15, experimenter: 0x0, name: "OFPBAC_BAD_SET_ARGUMENT", text: "Action sets a field to an invalid or * unsupported value, or modifies a read-only field" },
    ErrorCode { etype: 0x2, code: 16, experimenter: 0x0, name: "OFPBAC_BAD_SET_MASK", text: "Field in Set-Field action has Has-Mask * bit set to 1" },
    ErrorCode { etype: 0x2, code: 17, experimenter: 0x0, name: "OFPBAC_BAD_METER", text: "Invalid meter id in meter action" },
    ErrorCode { etype: 0xffff, code: 11, experimenter: 0x2320, name: "NXBAC_MUST_BE_ZERO", text: "Must-be-zero action argument had nonzero * value" },
    ErrorCode { etype: 0xffff, code: 15, experimenter: 0x2320, name: "NXBAC_BAD_CONJUNCTION", text: "Conjunction action must be only action * present" },
    ErrorCode { etype: 0xffff, code: 39, experimenter: 0x2320, name: "NXBAC_BAD_HEADER_TYPE", text: "Unsupported packet type in encap or decap" },
    ErrorCode { etype: 0xffff, code: 40, experimenter: 0x2320, name: "NXBAC_UNKNOWN_ED_PROP", text: "Unrecognized encap or decap property" },
    ErrorCode { etype: 0xffff, code: 41, experimenter: 0x2320, name: "NXBAC_BAD_ED_PROP", text: "Error in encap or decap property" },
    ErrorCode { etype: 0xffff, code: 42, experimenter: 0x2320, name: "NXBAC_CT_DATAPATH_SUPPORT", text: "Action requires connection tracking or a * particular connection-tracking based feature that the datapath in use * does not support" },
    ErrorCode { etype: 0x3, code: 0, experimenter: 0x0, name: "OFPBIC_UNKNOWN_INST", text: "Unknown instruction" },
    ErrorCode { etype: 0x3, code: 1, experimenter: 0x0, name: "OFPBIC_UNSUP_INST", text: "Switch or table does not support the * instruction" },
    ErrorCode { etype: 0x3, code: 2, experimenter: 0x0, name: "OFPBIC_BAD_TABLE_ID", text: "Invalid Table-ID specified" },
    ErrorCode { etype: 0x3, code: 3, experimenter: 0x0, name: "OFPBIC_UNSUP_METADATA", text: "Metadata value unsupported by datapath" },
    ErrorCode { etype: 0x3, code: 4, experimenter: 0x0, name: "OFPBIC_UNSUP_METADATA_MASK", text: "Metadata mask value unsupported by datapath" },
    ErrorCode { etype: 0x3, code: 5, experimenter: 0x0, name: "OFPBIC_BAD_EXPERIMENTER", text: "Unknown experimenter id specified" },
    ErrorCode { etype: 0x3, code: 6, experimenter: 0x0, name: "OFPBIC_BAD_EXP_TYPE", text: "Unknown instruction for experimenter id" },
    ErrorCode { etype: 0x3, code: 7, experimenter: 0x0, name: "OFPBIC_BAD_LEN", text: "Length problem in instructions" },
    ErrorCode { etype: 0x3, code: 8, experimenter: 0x0, name: "OFPBIC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x3, code: 9, experimenter: 0x0, name: "OFPBIC_DUP_INST", text: "Duplicate instruction" },
    ErrorCode { etype: 0x4, code: 0, experimenter: 0x0, name: "OFPBMC_BAD_TYPE", text: "Unsupported match type specified by the match" },
    ErrorCode { etype: 0x4, code: 1, experimenter: 0x0, name: "OFPBMC_BAD_LEN", text: "Length problem in match" },
    ErrorCode { etype: 0x4, code: 2, experimenter: 0x0, name: "OFPBMC_BAD_TAG", text: "Match uses an unsupported tag/encap" },
    ErrorCode { etype: 0x4, code: 3, experimenter: 0x0, name: "OFPBMC_BAD_DL_ADDR_MASK", text: "Unsupported datalink addr mask - switch does not support * arbitrary datalink address mask" },
    ErrorCode { etype: 0x4, code: 4, experimenter: 0x0, name: "OFPBMC_BAD_NW_ADDR_MASK", text: "Unsupported network addr mask - switch does not support * arbitrary network address mask" },
    ErrorCode { etype: 0x4, code: 5, experimenter: 0x0, name: "OFPBMC_BAD_WILDCARDS", text: "Unsupported wildcard specified in the * match" },
    ErrorCode { etype: 0x4, code: 6, experimenter: 0x0, name: "OFPBMC_BAD_FIELD", text: "Unsupported field in the match" },
    ErrorCode { etype: 0x4, code: 7, experimenter: 0x0, name: "OFPBMC_BAD_VALUE", text: "Unsupported value in a match * field" },
    ErrorCode { etype: 0x4, code: 8, experimenter: 0x0, name: "OFPBMC_BAD_MASK", text: "Unsupported mask specified in the * match" },
    ErrorCode { etype: 0x4, code: 9, experimenter: 0x0, name: "OFPBMC_BAD_PREREQ", text: "A prerequisite was not met" },
    ErrorCode { etype: 0x4, code: 10, experimenter: 0x0, name: "OFPBMC_DUP_FIELD", text: "A field type was duplicated" },
    ErrorCode { etype: 0x4, code: 11, experimenter: 0x0, name: "OFPBMC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0xffff, code: 43, experimenter: 0x2320, name: "NXBMC_CT_DATAPATH_SUPPORT", text: "Flow match requires connection tracking * or a particular connection-tracking based feature that the datapath in * use does not support" },
    ErrorCode { etype: 0x5, code: 0, experimenter: 0x0, name: "OFPFMFC_UNKNOWN", text: "Unspecified error" },
    ErrorCode { etype: 0x5, code: 1, experimenter: 0x0, name: "OFPFMFC_TABLE_FULL", text: "Flow not added because of full table(s)" },
    ErrorCode { etype: 0x5, code: 2, experimenter: 0x0, name: "OFPFMFC_BAD_TABLE_ID", text: "Table does not exist" },
    ErrorCode { etype: 0x5, code: 3, experimenter: 0x0, name: "OFPFMFC_OVERLAP", text: "Attempted to add overlapping flow with * CHECK_OVERLAP flag set" },
    ErrorCode { etype: 0x5, code: 4, experimenter: 0x0, name: "OFPFMFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x5, code: 5, experimenter: 0x0, name: "OFPFMFC_BAD_TIMEOUT", text: "Flow not added because of unsupported idle/hard * timeout" },
    ErrorCode { etype: 0x5, code: 6, experimenter: 0x0, name: "OFPFMFC_BAD_COMMAND", text: "Unsupported or unknown command" },
    ErrorCode { etype: 0x5, code: 7, experimenter: 0x0, name: "OFPFMFC_BAD_FLAGS", text: "Unsupported or unknown * flags" },
    ErrorCode { etype: 0x5, code: 8, experimenter: 0x0, name: "OFPFMFC_CANT_SYNC", text: "Problem in table synchronization" },
    ErrorCode { etype: 0x5, code: 9, experimenter: 0x0, name: "OFPFMFC_BAD_PRIORITY", text: "Unsupported priority value" },
    ErrorCode { etype: 0x5, code: 10, experimenter: 0x0, name: "OFPFMFC_IS_SYNC", text: "Synchronized flow entry is read only" },
    ErrorCode { etype: 0xffff, code: 12, experimenter: 0x2320, name: "NXFMFC_HARDWARE", text: "Generic hardware error" },
    ErrorCode { etype: 0xffff, code: 13, experimenter: 0x2320, name: "NXFMFC_BAD_TABLE_ID", text: "A nonexistent table ID was specified in * the \"command\" field of struct ofp_flow_mod, when the * nxt_flow_mod_table_id extension is enabled" },
    ErrorCode { etype: 0xffff, code: 37, experimenter: 0x2320, name: "NXFMFC_INVALID_TLV_FIELD", text: "Attempted to add a flow with an invalid * variable length meta-flow field" },
    ErrorCode { etype: 0x6, code: 0, experimenter: 0x0, name: "OFPGMFC_GROUP_EXISTS", text: "Group not added because a group ADD attempted * to replace an already-present group" },
    ErrorCode { etype: 0x6, code: 1, experimenter: 0x0, name: "OFPGMFC_INVALID_GROUP", text: "Group not added because Group specified is * invalid" },
    ErrorCode { etype: 0x6, code: 2, experimenter: 0x0, name: "OFPGMFC_WEIGHT_UNSUPPORTED", text: "Switch does not support unequal load sharing * with select groups" },
    ErrorCode { etype: 0x6, code: 3, experimenter: 0x0, name: "OFPGMFC_OUT_OF_GROUPS", text: "The group table is full" },
    ErrorCode { etype: 0x6, code: 4, experimenter: 0x0, name: "OFPGMFC_OUT_OF_BUCKETS", text: "The maximum number of action buckets for a * group has been exceeded" },
    ErrorCode { etype: 0x6, code: 5, experimenter: 0x0, name: "OFPGMFC_CHAINING_UNSUPPORTED", text: "Switch does not support groups that forward to * groups" },
    ErrorCode { etype: 0x6, code: 6, experimenter: 0x0, name: "OFPGMFC_WATCH_UNSUPPORTED", text: "This group cannot watch the watch_port or * watch_group specified" },
    ErrorCode { etype: 0x6, code: 7, experimenter: 0x0, name: "OFPGMFC_LOOP", text: "Group entry would cause a loop" },
    ErrorCode { etype: 0x6, code: 8, experimenter: 0x0, name: "OFPGMFC_UNKNOWN_GROUP", text: "Group not modified because a group MODIFY * attempted to modify a non-existent group" },
    ErrorCode { etype: 0x6, code: 9, experimenter: 0x0, name: "OFPGMFC_CHAINED_GROUP", text: "Group not deleted because another group is * forwarding to it" },
    ErrorCode { etype: 0x6, code: 10, experimenter: 0x0, name: "OFPGMFC_BAD_TYPE", text: "Unsupported or unknown group type" },
    ErrorCode { etype: 0x6, code: 11, experimenter: 0x0, name: "OFPGMFC_BAD_COMMAND", text: "Unsupported or unknown command" },
    ErrorCode { etype: 0x6, code: 12, experimenter: 0x0, name: "OFPGMFC_BAD_BUCKET", text: "Error in bucket" },
    ErrorCode { etype: 0x6, code: 13, experimenter: 0x0, name: "OFPGMFC_BAD_WATCH", text: "Error in watch port/group" },
    ErrorCode { etype: 0x6, code: 14, experimenter: 0x0, name: "OFPGMFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x6, code: 15, experimenter: 0x0, name: "OFPGMFC_UNKNOWN_BUCKET", text: "Invalid bucket identifier used in INSERT * BUCKET or REMOVE BUCKET command" },
    ErrorCode { etype: 0x6, code: 16, experimenter: 0x0, name: "OFPGMFC_BUCKET_EXISTS", text: "Can't insert bucket because a bucket already * exist with that bucket-id" },
    ErrorCode { etype: 0x7, code: 0, experimenter: 0x0, name: "OFPPMFC_BAD_PORT", text: "Specified port does not exist" },
    ErrorCode { etype: 0x7, code: 1, experimenter: 0x0, name: "OFPPMFC_BAD_HW_ADDR", text: "Specified hardware address does not match the * port number" },
    ErrorCode { etype: 0x7, code: 2, experimenter: 0x0, name: "OFPPMFC_BAD_CONFIG", text: "Specified config is invalid" },
    ErrorCode { etype: 0x7, code: 3, experimenter: 0x0, name: "OFPPMFC_BAD_ADVERTISE", text: "Specified advertise is invalid" },
    ErrorCode { etype: 0x7, code: 4, experimenter: 0x0, name: "OFPPMFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x8, code: 0, experimenter: 0x0, name: "OFPTMFC_BAD_TABLE", text: "Specified table does not exist" },
    ErrorCode { etype: 0x8, code: 1, experimenter: 0x0, name: "OFPTMFC_BAD_CONFIG", text: "Specified config is invalid" },
    ErrorCode { etype: 0x8, code: 2, experimenter: 0x0, name: "OFPTMFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x9, code: 0, experimenter: 0x0, name: "OFPQOFC_BAD_PORT", text: "Invalid port (or port does not exist)" },
    ErrorCode { etype: 0x9, code: 1, experimenter: 0x0, name: "OFPQOFC_BAD_QUEUE", text: "Queue does not exist" },
    ErrorCode { etype: 0x9, code: 2, experimenter: 0x0, name: "OFPQOFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0xffff, code: 23, experimenter: 0x2320, name: "NXQOFC_QUEUE_ERROR", text: "System error retrieving queue details" },
    ErrorCode { etype: 0xa, code: 0, experimenter: 0x0, name: "OFPSCFC_BAD_FLAGS", text: "Specified flags is invalid" },
    ErrorCode { etype: 0xa, code: 1, experimenter: 0x0, name: "OFPSCFC_BAD_LEN", text: "Specified len is invalid" },
    ErrorCode { etype: 0xa, code: 2, experimenter: 0x0, name: "OFPSCFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0xb, code: 0, experimenter: 0x0, name: "OFPRRFC_STALE", text: "Stale Message: old generation_id" },
    ErrorCode { etype: 0xb, code: 1, experimenter: 0x0, name: "OFPRRFC_UNSUP", text: "Controller role change unsupported" },
    ErrorCode { etype: 0xb, code: 2, experimenter: 0x0, name: "OFPRRFC_BAD_ROLE", text: "Invalid role" },
    ErrorCode { etype: 0xb, code: 3, experimenter: 0x0, name: "OFPRRFC_ID_UNSUP", text: "Switch doesn't support changing ID" },
    ErrorCode { etype: 0xb, code: 4, experimenter: 0x0, name: "OFPRRFC_ID_IN_USE", text: "Requested ID is in use" },
    ErrorCode { etype: 0xc, code: 0, experimenter: 0x0, name: "OFPMMFC_UNKNOWN", text: "Unspecified error" },
    ErrorCode { etype: 0xc, code: 1, experimenter: 0x0, name: "OFPMMFC_METER_EXISTS", text: "Meter not added because a Meter ADD attempted to * replace an existing Meter" },
    ErrorCode { etype: 0xc, code: 2, experimenter: 0x0, name: "OFPMMFC_INVALID_METER", text: "Meter not added because meter specified is invalid, or * invalid meter in meter action" },
    ErrorCode { etype: 0xc, code: 3, experimenter: 0x0, name: "OFPMMFC_UNKNOWN_METER", text: "Meter not modified because a Meter MODIFY attempted * to modify a non-existent meter, or bad meter in meter action" },
    ErrorCode { etype: 0xc, code: 4, experimenter: 0x0, name: "OFPMMFC_BAD_COMMAND", text: "Unsupported or unknown command" },
    ErrorCode { etype: 0xc, code: 5, experimenter: 0x0, name: "OFPMMFC_BAD_FLAGS", text: "Flag configuration unsupported" },
    ErrorCode { etype: 0xc, code: 6, experimenter: 0x0, name: "OFPMMFC_BAD_RATE", text: "Rate unsupported" },
    ErrorCode { etype: 0xc, code: 7, experimenter: 0x0, name: "OFPMMFC_BAD_BURST", text: "Burst size unsupported" },
    ErrorCode { etype: 0xc, code: 8, experimenter: 0x0, name: "OFPMMFC_BAD_BAND", text: "Band unsupported" },
    ErrorCode { etype: 0xc, code: 9, experimenter: 0x0, name: "OFPMMFC_BAD_BAND_VALUE", text: "Band value unsupported" },
    ErrorCode { etype: 0xc, code: 10, experimenter: 0x0, name: "OFPMMFC_OUT_OF_METERS", text: "No more meters available" },
    ErrorCode { etype: 0xc, code: 11, experimenter: 0x0, name: "OFPMMFC_OUT_OF_BANDS", text: "The maximum number of properties for a meter has * been exceeded" },
    ErrorCode { etype: 0xd, code: 0, experimenter: 0x0, name: "OFPTFFC_BAD_TABLE", text: "Specified table does not exist" },
    ErrorCode { etype: 0xd, code: 1, experimenter: 0x0, name: "OFPTFFC_BAD_METADATA", text: "Invalid metadata mask" },
    ErrorCode { etype: 0xd, code: 5, experimenter: 0x0, name: "OFPTFFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0xd, code: 6, experimenter: 0x0, name: "OFPTFFC_BAD_CAPA", text: "Invalid capability field" },
    ErrorCode { etype: 0xd, code: 7, experimenter: 0x0, name: "OFPTFFC_BAD_MAX_ENT", text: "Invalid max_entries field" },
    ErrorCode { etype: 0xd, code: 8, experimenter: 0x0, name: "OFPTFFC_BAD_FEATURES", text: "Invalid features field" },
    ErrorCode { etype: 0xd, code: 9, experimenter: 0x0, name: "OFPTFFC_BAD_COMMAND", text: "Invalid command" },
    ErrorCode { etype: 0xd, code: 10, experimenter: 0x0, name: "OFPTFFC_TOO_MANY", text: "Can't handle this many flow tables" },
    ErrorCode { etype: 0xffff, code: 44, experimenter: 0x2320, name: "NXTFFC_DUP_TABLE", text: "Table specified multiple times" },
    ErrorCode { etype: 0xe, code: 0, experimenter: 0x0, name: "OFPBPC_BAD_TYPE", text: "Unknown or * unsupported property type" },
    ErrorCode { etype: 0xe, code: 1, experimenter: 0x0, name: "OFPBPC_BAD_LEN", text: "Length problem * in property" },
    ErrorCode { etype: 0xe, code: 2, experimenter: 0x0, name: "OFPBPC_BAD_VALUE", text: "Unsupported * property value" },
    ErrorCode { etype: 0xe, code: 3, experimenter: 0x0, name: "OFPBPC_TOO_MANY", text: "Can't handle * this many properties" },
    ErrorCode { etype: 0xe, code: 4, experimenter: 0x0, name: "OFPBPC_DUP_TYPE", text: "A property type * was duplicated" },
    ErrorCode { etype: 0xe, code: 5, experimenter: 0x0, name: "OFPBPC_BAD_EXPERIMENTER", text: "Unknown * experimenter id specified" },
    ErrorCode { etype: 0xe, code: 6, experimenter: 0x0, name: "OFPBPC_BAD_EXP_TYPE", text: "Unknown * exp_type for experimenter id" },
    ErrorCode { etype: 0xe, code: 7, experimenter: 0x0, name: "OFPBPC_BAD_EXP_VALUE", text: "Unknown value * for experimenter id" },
    ErrorCode { etype: 0xe, code: 8, experimenter: 0x0, name: "OFPBPC_EPERM", text: "Permissions * error" },
    ErrorCode { etype: 0xf, code: 0, experimenter: 0x0, name: "OFPACFC_INVALID", text: "One mask is invalid" },
    ErrorCode { etype: 0xf, code: 1, experimenter: 0x0, name: "OFPACFC_UNSUPPORTED", text: "Requested configuration not supported" },
    ErrorCode { etype: 0xf, code: 2, experimenter: 0x0, name: "OFPACFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x11, code: 0, experimenter: 0x0, name: "OFPBFC_UNKNOWN", text: "Unspecified error" },
    ErrorCode { etype: 0x11, code: 1, experimenter: 0x0, name: "OFPBFC_EPERM", text: "Permissions error" },
    ErrorCode { etype: 0x11, code: 2, experimenter: 0x0, name: "OFPBFC_BAD_ID", text: "Bundle ID doesn't exist" },
    ErrorCode { etype: 0x11, code: 3, experimenter: 0x0, name: "OFPBFC_BUNDLE_EXIST", text: "Bundle ID already exists" },
    ErrorCode { etype: 0x11, code: 4, experimenter: 0x0, name: "OFPBFC_BUNDLE_CLOSED", text: "Bundle ID is closed" },
    ErrorCode { etype: 0x11, code: 5, experimenter: 0x0, name: "OFPBFC_OUT_OF_BUNDLES", text: "Too many bundle IDs" },
    ErrorCode { etype: 0x11, code: 6, experimenter: 0x0, name: "OFPBFC_BAD_TYPE", text: "Unsupported of unknown message control * type" },
    ErrorCode { etype: 0x11, code: 7, experimenter: 0x0, name: "OFPBFC_BAD_FLAGS", text: "Unsupported, unknown, or inconsistent * flags" },
    ErrorCode { etype: 0x11, code: 8, experimenter: 0x0, name: "OFPBFC_MSG_BAD_LEN", text: "Length problem in included message" },
    ErrorCode { etype: 0x11, code: 9, experimenter: 0x0, name: "OFPBFC_MSG_BAD_XID", text: "Inconsistent or duplicate XID" },
    ErrorCode { etype: 0x11, code: 10, experimenter: 0x0, name: "OFPBFC_MSG_UNSUP", text: "Unsupported message in this bundle" },
    ErrorCode { etype: 0x11, code: 11, experimenter: 0x0, name: "OFPBFC_MSG_CONFLICT", text: "Unsupported message combination in this * bundle" },
    ErrorCode { etype: 0x11, code: 12, experimenter: 0x0, name: "OFPBFC_MSG_TOO_MANY", text: "Cant handle this many messages in * bundle" },
    ErrorCode { etype: 0x11, code: 13, experimenter: 0x0, name: "OFPBFC_MSG_FAILED", text: "One message in bundle failed" },
    ErrorCode { etype: 0x11, code: 14, experimenter: 0x0, name: "OFPBFC_TIMEOUT", text: "Bundle is taking too long" },
    ErrorCode { etype: 0x11, code: 15, experimenter: 0x0, name: "OFPBFC_BUNDLE_IN_PROGRESS", text: "Bundle is locking the resource" },
    ErrorCode { etype: 0x11, code: 16, experimenter: 0x0, name: "OFPBFC_SCHED_NOT_SUPPORTED", text: "Scheduled commit was received and scheduling is not * supported" },
    ErrorCode { etype: 0x11, code: 17, experimenter: 0x0, name: "OFPBFC_SCHED_FUTURE", text: "Scheduled commit time exceeds upper bound" },
    ErrorCode { etype: 0x11, code: 18, experimenter: 0x0, name: "OFPBFC_SCHED_PAST", text: "Scheduled commit time exceeds lower bound" },
    ErrorCode { etype: 0xffff, code: 22, experimenter: 0x2320, name: "OFPBFC_BAD_VERSION", text: "In an OFPT_BUNDLE_ADD_MESSAGE, the OpenFlow version in * the inner and outer messages differ" },
    ErrorCode { etype: 0x10, code: 0, experimenter: 0x0, name: "OFPMOFC_UNKNOWN", text: "Unspecified error" },
    ErrorCode { etype: 0x10, code: 1, experimenter: 0x0, name: "OFPMOFC_MONITOR_EXISTS", text: "Monitor not added * because a Monitor ADD attempted to replace an existing Monitor" },
    ErrorCode { etype: 0x10, code: 2, experimenter: 0x0, name: "OFPMOFC_INVALID_MONITOR", text: "Monitor not added because * Monitor specified is invalid" },
    ErrorCode { etype: 0x10, code: 3, experimenter: 0x0, name: "OFPMOFC_UNKNOWN_MONITOR", text: "Monitor not modified * because a Monitor MODIFY attempted to modify a non-existent Monitor" },
    ErrorCode { etype: 0x10, code: 4, experimenter: 0x0, name: "OFPMOFC_BAD_COMMAND", text: "Unsupported or unknown command" },
    ErrorCode { etype: 0x10, code: 5, experimenter: 0x0, name: "OFPMOFC_BAD_FLAGS", text: "Flag configuration * unsupported" },
    ErrorCode { etype: 0x10, code: 6, experimenter: 0x0, name: "OFPMOFC_BAD_TABLE_ID", text: "Specified table does not exist" },
    ErrorCode { etype: 0x10, code: 7, experimenter: 0x0, name: "OFPMOFC_BAD_OUT", text: "Error in output port/group" },
    ErrorCode { etype: 0xffff, code: 16, experimenter: 0x2320, name: "NXTTMFC_BAD_COMMAND", text: "The TLV table mod command is not * recognized as a valid operation" },
    ErrorCode { etype: 0xffff, code: 17, experimenter: 0x2320, name: "NXTTMFC_BAD_OPT_LEN", text: "The option length is not a valid * option size for TLVs" },
    ErrorCode { etype: 0xffff, code: 18, experimenter: 0x2320, name: "NXTTMFC_BAD_FIELD_IDX", text: "The field index is out of range for * the supported NX_TUN_METADATA<n> match" },
    ErrorCode { etype: 0xffff, code: 19, experimenter: 0x2320, name: "NXTTMFC_TABLE_FULL", text: "The total set of configured options * exceeds the maximum supported by the switch" },
    ErrorCode { etype: 0xffff, code: 20, experimenter: 0x2320, name: "NXTTMFC_ALREADY_MAPPED", text: "The controller issued an NXTTMC_ADD * command for a field index that is already mapped" },
    ErrorCode { etype: 0xffff, code: 21, experimenter: 0x2320, name: "NXTTMFC_DUP_ENTRY", text: "The option TLV that is attempting * to be mapped is the same as one assigned to a different field" },
    ErrorCode { etype: 0xffff, code: 38, experimenter: 0x2320, name: "NXTTMFC_INVALID_TLV_DEL", text: "Attempted to delete a TLV mapping that * is used by any active flow" },
    ErrorCode { etype: 0xffff, code: 34, experimenter: 0x2320, name: "NXR_NOT_SUPPORTED", text: "This datapath doesn't support * NXT_RESUME" },
    ErrorCode { etype: 0xffff, code: 35, experimenter: 0x2320, name: "NXR_STALE", text: "Continuation is stale: Open vSwitch * process has been restarted or bridge has been destroyed since * continuation was generated, or continuation was not generated by this * Open vSwitch instance" },
    ErrorCode { etype: 0xffff, code: 36, experimenter: 0x2320, name: "NXST_NOT_CONFIGURED", text: "Protocol is not configured on this * Open vSwitch instance" },
];
