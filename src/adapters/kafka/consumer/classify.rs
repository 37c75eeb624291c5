//! Classification: one record of a scripts topic turned into a delivery, its receipt (lane, partition, offset and
//! the generation of the assignment that delivered it) and its message, parsed by SCRC's wire format, or kept whole
//! as a [`RawRecord`] when it cannot be read.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rdkafka::message::{BorrowedMessage, Message};

use super::context::SourceContext;
use crate::adapters::kafka::delivery::{KafkaDelivery, Position, RawRecord, Receipt};
use crate::adapters::kafka::wire::{self, Coordinates, MessageLimits};
use crate::ports::{Delivery, Inbound, Unreadable};

/// One record as the consumer received it, copied out of librdkafka's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record<'a> {
    /// The topic the record came from, which names its lane and its origin (`topic:partition:offset`).
    pub topic: &'a str,
    /// The partition's number in that topic.
    pub partition: i32,
    /// The record's offset in its partition, which its commit and its fallback id are made of.
    pub offset: i64,
    /// The record's timestamp in milliseconds since the epoch, when it has one.
    pub timestamp_ms: Option<i64>,
    /// The message's bytes, SCRC's JSON script; `None` for a record without a value, which is unreadable.
    pub payload: Option<&'a [u8]>,
    /// The record's key, the script's id when the message names none.
    pub key: Option<&'a [u8]>,
    /// The record's headers, names as UTF-8, values as they came: the `tenant` header, and all for a dead letter.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The delivery of a message librdkafka handed the poller.
pub(super) fn classify(message: &BorrowedMessage<'_>, limits: MessageLimits, context: &SourceContext) -> KafkaDelivery {
    let record = Record {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        payload: message.payload(),
        key: message.key(),
        headers: read_headers(message),
    };
    let lane = context.lane(record.topic);
    let generation = lane.and_then(|lane| context.generation(lane, record.partition));
    let topic = lane
        .and_then(|lane| context.topics.get(usize::from(lane)).cloned())
        .unwrap_or_else(|| Arc::from(record.topic));
    classify_record(record, topic, lane, generation, limits)
}

/// The delivery of `record`, received on the lane `lane` (its topic's place in `KAFKA_TOPIC`) under the assignment
/// `generation` of its partition.
pub(super) fn classify_record(
    record: Record<'_>,
    topic: Arc<str>,
    lane: Option<u16>,
    generation: Option<u64>,
    limits: MessageLimits,
) -> KafkaDelivery {
    let enqueued = record
        .timestamp_ms
        .and_then(|millis| u64::try_from(millis).ok())
        .map(|millis| UNIX_EPOCH + Duration::from_millis(millis));
    // The group assigns only the subscribed topics, so every message has a lane. Were one not to, generation 0,
    // which no assignment has, keeps its offset from ever being stored under the first lane's topic.
    let position = Position {
        lane: lane.unwrap_or(0),
        partition: record.partition,
        offset: record.offset,
        generation: generation.unwrap_or(0),
    };
    let at = Coordinates {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
    };
    let tenant = record
        .headers
        .iter()
        .find(|(name, _)| name == wire::TENANT_HEADER)
        .and_then(|(_, value)| value.as_deref());
    let parsed = wire::parse_message(record.payload, record.key, tenant, at, limits);
    let message = match parsed {
        Ok(inbound) => inbound,
        Err(unreadable) => Inbound::Unreadable(Unreadable {
            reason: unreadable.reason,
            id: unreadable.id,
            raw: RawRecord {
                origin: format!("{}:{}:{}", record.topic, record.partition, record.offset),
                payload: record.payload.map(<[u8]>::to_vec),
                key: record.key.map(<[u8]>::to_vec),
                headers: record.headers,
            },
        }),
    };
    Delivery {
        receipt: Receipt::new(topic, position),
        message,
        enqueued,
    }
}

/// A message's headers, names converted lossily to UTF-8 (invalid bytes become U+FFFD).
///
/// Any client can send a header name that is not UTF-8, and rdkafka's `Headers::get`, `try_get` and `iter` all
/// unwrap the name as UTF-8, panicking on such a message. So the headers are read through librdkafka directly.
fn read_headers(message: &BorrowedMessage<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    use rdkafka::bindings as rdsys;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR;

    let mut headers: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the live native message for as long as `message` is borrowed. librdkafka keeps
    // ownership of the header list it hands out, which lives as long as the message.
    let error = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &raw mut headers) };
    if error != RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers` is the message's valid header list (above).
    let count = unsafe { rdsys::rd_kafka_header_cnt(headers) };
    (0..count)
        .filter_map(|index| {
            let mut name: *const std::ffi::c_char = std::ptr::null();
            let mut value: *const std::ffi::c_void = std::ptr::null();
            let mut size = 0usize;
            // SAFETY: `index` is below the count; the out-pointers are valid locals.
            let error =
                unsafe { rdsys::rd_kafka_header_get_all(headers, index, &raw mut name, &raw mut value, &raw mut size) };
            if error != RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                return None;
            }
            // SAFETY: librdkafka stores every name NUL-terminated, and a non-null value as `size` bytes; both are
            // owned by the message and copied here before the borrow ends.
            let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned();
            let value =
                (!value.is_null()).then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec());
            Some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MessageLimits = MessageLimits {
        max_bytes: 1 << 20,
        max_files: 64,
    };
    use crate::domain::Status;

    fn record<'a>(payload: &'a [u8], headers: Vec<(String, Option<Vec<u8>>)>) -> Record<'a> {
        Record {
            topic: "scripts-batch",
            partition: 4,
            offset: 17,
            timestamp_ms: Some(1_700_000_000_000),
            payload: Some(payload),
            key: Some(b"from-the-key"),
            headers,
        }
    }

    fn script_message() -> &'static [u8] {
        br#"{"id":"s1","language":"python","source":"print(1)","tests":[{"input":"","expected_output":"1\n"}]}"#
    }

    #[test]
    fn a_script_gets_a_receipt_of_its_lane_partition_offset_and_generation() {
        let delivery = classify_record(
            record(script_message(), Vec::new()),
            Arc::from("scripts-batch"),
            Some(1),
            Some(9),
            LIMITS,
        );
        assert_eq!(
            delivery.receipt.position(),
            Position {
                lane: 1,
                partition: 4,
                offset: 17,
                generation: 9
            }
        );
        assert_eq!(delivery.receipt.to_string(), "scripts-batch:4:17");
        assert_eq!(
            delivery.enqueued,
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000))
        );
        let Inbound::Script(script) = delivery.message else {
            panic!("a script: {:?}", delivery.message);
        };
        assert_eq!(script.id.as_str(), "s1");
        assert_eq!(script.tenant, None);
    }

    #[test]
    fn the_tenant_comes_from_its_header_when_the_message_has_none() {
        let headers = vec![("tenant".to_owned(), Some(b"class-7".to_vec()))];
        let delivery = classify_record(
            record(script_message(), headers),
            Arc::from("scripts"),
            Some(0),
            Some(1),
            LIMITS,
        );
        let Inbound::Script(script) = delivery.message else {
            panic!("a script");
        };
        assert_eq!(script.tenant.map(|t| t.as_str().to_owned()), Some("class-7".to_owned()));
    }

    #[test]
    fn an_unreadable_record_is_kept_whole_with_its_origin() {
        let headers = vec![("trace".to_owned(), Some(b"abc".to_vec())), ("empty".to_owned(), None)];
        let delivery = classify_record(
            record(b"{not json", headers.clone()),
            Arc::from("scripts-batch"),
            Some(1),
            Some(2),
            LIMITS,
        );
        let Inbound::Unreadable(unreadable) = delivery.message else {
            panic!("unreadable");
        };
        assert!(unreadable.reason.contains("not valid JSON"), "{}", unreadable.reason);
        assert_eq!(
            unreadable.id.map(|id| id.as_str().to_owned()),
            Some("from-the-key".to_owned())
        );
        assert_eq!(
            unreadable.raw,
            RawRecord {
                origin: "scripts-batch:4:17".into(),
                payload: Some(b"{not json".to_vec()),
                key: Some(b"from-the-key".to_vec()),
                headers,
            }
        );
    }

    #[test]
    fn a_record_of_an_unknown_topic_gets_a_generation_no_assignment_has() {
        let delivery = classify_record(
            record(script_message(), Vec::new()),
            Arc::from("elsewhere"),
            None,
            None,
            LIMITS,
        );
        assert_eq!(delivery.receipt.position().generation, 0);
        assert_eq!(delivery.receipt.position().lane, 0);
    }

    #[test]
    fn a_readable_but_invalid_message_is_rejected_not_set_aside() {
        let payload = br#"{"id":"s2","language":"cobol","source":"x"}"#;
        let delivery = classify_record(
            record(payload, Vec::new()),
            Arc::from("scripts"),
            Some(0),
            Some(1),
            LIMITS,
        );
        let Inbound::Rejected { id, reason, .. } = delivery.message else {
            panic!("rejected");
        };
        assert_eq!(id.as_str(), "s2");
        assert!(reason.contains("cobol"), "{reason}");
        let _ = Status::Rejected;
    }
}
