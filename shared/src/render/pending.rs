//! TEMPORARY until issue-22t merges: the Teams card and the webhook document.
use super::alert::Alert;
impl Alert {
    pub fn teams(&self) -> serde_json::Value {
        serde_json::json!({"type": "message", "text": self.headline})
    }
    pub fn document(&self, function: &str, event_id: &str) -> serde_json::Value {
        serde_json::json!({"version": 1, "function": function, "event_id": event_id, "kind": self.kind, "headline": self.headline})
    }
}
pub mod outbound_stub {
    pub const SIGNATURE_HEADER: &str = "X-Signalbox-Signature";
    pub const TIMESTAMP_HEADER: &str = "X-Signalbox-Timestamp";
    pub const DELIVERY_HEADER: &str = "X-Signalbox-Delivery";
    pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}
