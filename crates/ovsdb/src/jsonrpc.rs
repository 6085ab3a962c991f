//! JSON-RPC 1.0 as OVSDB uses it (RFC 7047 §4): requests, notifications and responses, and
//! the correlation of responses with the calls that wait for them. Pure: no I/O.
//!
//! A request carries a non-null `id`; a notification is a request whose `id` is `null`; a
//! response carries `result`, `error` (one of them `null`) and the request's `id`. Either
//! side may send `echo` requests, which the other answers with the same params.
use serde_json::{Value, json};
use std::collections::HashMap;

/// One JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A call that expects a response.
    Request {
        /// Correlates the response.
        id: Value,
        /// The method name.
        method: String,
        /// The parameters (an array for every OVSDB method).
        params: Value,
    },
    /// A request without a response (`update`, `update2`, `update3`, `locked`, `cancel`...).
    Notification {
        /// The method name.
        method: String,
        /// The parameters.
        params: Value,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: Value,
        /// The result (null on error).
        result: Value,
        /// The error (null on success).
        error: Value,
    },
}

impl Message {
    /// Classifies a decoded JSON value; the error says why it is not a JSON-RPC message.
    pub fn from_json(v: Value) -> Result<Message, String> {
        let Value::Object(mut o) = v else { return Err("message is not a JSON object".into()) };
        let id = o.remove("id").unwrap_or(Value::Null);
        if let Some(method) = o.remove("method") {
            let Value::String(method) = method else { return Err("\"method\" is not a string".into()) };
            let params = o.remove("params").unwrap_or(Value::Null);
            return Ok(if id.is_null() {
                Message::Notification { method, params }
            } else {
                Message::Request { id, method, params }
            });
        }
        if o.contains_key("result") || o.contains_key("error") {
            if id.is_null() {
                return Err("response without an id".into());
            }
            return Ok(Message::Response {
                id,
                result: o.remove("result").unwrap_or(Value::Null),
                error: o.remove("error").unwrap_or(Value::Null),
            });
        }
        Err("message has neither \"method\" nor \"result\"/\"error\"".into())
    }

    /// The wire form.
    pub fn to_json(&self) -> Value {
        match self {
            Message::Request { id, method, params } => json!({"id": id, "method": method, "params": params}),
            Message::Notification { method, params } => json!({"id": null, "method": method, "params": params}),
            Message::Response { id, result, error } => json!({"id": id, "result": result, "error": error}),
        }
    }

    /// The wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).expect("JSON values always serialize")
    }

    /// The response this side owes for an incoming request it handles itself: `echo` is
    /// answered with its own params (RFC 7047 §4.1.11). Other requests get an error
    /// response, because a client offers no other methods.
    pub fn answer(&self) -> Option<Message> {
        let Message::Request { id, method, params } = self else { return None };
        Some(if method == "echo" {
            Message::Response { id: id.clone(), result: params.clone(), error: Value::Null }
        } else {
            Message::Response { id: id.clone(), result: Value::Null, error: json!("unknown method") }
        })
    }
}

/// Calls awaiting a response, by numeric id; `T` is whatever the caller needs to finish
/// the call (a reply channel, a monitor being set up...).
#[derive(Debug)]
pub struct Calls<T> {
    pending: HashMap<u64, T>,
}

impl<T> Default for Calls<T> {
    fn default() -> Self {
        Calls { pending: HashMap::new() }
    }
}

impl<T> Calls<T> {
    /// Records that request `id` waits for its response.
    pub fn register(&mut self, id: u64, waiter: T) {
        self.pending.insert(id, waiter);
    }

    /// The waiter of a pending call.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.pending.get_mut(&id)
    }

    /// Forgets a call (cancelled by its caller); returns its waiter if it was pending.
    pub fn forget(&mut self, id: u64) -> Option<T> {
        self.pending.remove(&id)
    }

    /// Matches a response to its call: the waiter and the outcome (`Err` holds the
    /// server's error value). `None` for an id no call is waiting on.
    pub fn complete(&mut self, id: &Value, result: Value, error: Value) -> Option<(T, Result<Value, Value>)> {
        let waiter = self.pending.remove(&id.as_u64()?)?;
        Some((waiter, if error.is_null() { Ok(result) } else { Err(error) }))
    }

    /// Takes every waiter (the connection closed: none of them will be answered).
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, T)> + '_ {
        self.pending.drain()
    }

    /// Number of calls in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no call is in flight.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::from_json(serde_json::from_str(s).unwrap()).unwrap()
    }

    #[test]
    fn recorded_server_echo_is_answered_with_its_params() {
        let m = parse(r#"{"id":"echo","method":"echo","params":[]}"#);
        assert_eq!(m.answer().unwrap().to_json(), json!({"id": "echo", "result": [], "error": null}));
    }

    #[test]
    fn null_id_makes_a_notification() {
        let m = parse(r#"{"id":null,"method":"update2","params":["m",{}]}"#);
        assert!(matches!(m, Message::Notification { ref method, .. } if method == "update2"));
        assert!(m.answer().is_none());
    }

    #[test]
    fn responses_complete_the_call_with_their_id() {
        let mut calls = Calls::default();
        calls.register(3, "list_dbs");
        calls.register(4, "transact");
        let Message::Response { id, result, error } =
            parse(r#"{"id":4,"result":null,"error":{"error":"unknown database","details":"x"}}"#)
        else {
            panic!()
        };
        let (w, outcome) = calls.complete(&id, result, error).unwrap();
        assert_eq!(w, "transact");
        assert_eq!(outcome.unwrap_err()["error"], json!("unknown database"));
        let Message::Response { id, result, error } =
            parse(r#"{"id":3,"result":["Open_vSwitch","_Server"],"error":null}"#)
        else {
            panic!()
        };
        assert_eq!(calls.complete(&id, result, error).unwrap().1.unwrap()[1], json!("_Server"));
        assert!(calls.is_empty());
    }

    #[test]
    fn unknown_or_repeated_ids_complete_nothing() {
        let mut calls: Calls<()> = Calls::default();
        calls.register(1, ());
        assert!(calls.complete(&json!(2), Value::Null, Value::Null).is_none());
        assert!(calls.complete(&json!("1"), Value::Null, Value::Null).is_none());
        assert!(calls.complete(&json!(1), Value::Null, Value::Null).is_some());
        assert!(calls.complete(&json!(1), Value::Null, Value::Null).is_none());
    }

    #[test]
    fn malformed_messages_are_rejected_with_a_reason() {
        let bad = |s: &str| Message::from_json(serde_json::from_str(s).unwrap()).unwrap_err();
        assert_eq!(bad("[1]"), "message is not a JSON object");
        assert_eq!(bad(r#"{"method":1}"#), "\"method\" is not a string");
        assert_eq!(bad(r#"{"result":1,"id":null}"#), "response without an id");
        assert!(bad(r#"{"id":1}"#).contains("neither"));
    }
}
