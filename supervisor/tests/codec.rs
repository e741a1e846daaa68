//! Driving a worker from outside the process: by name, with encoded bytes.

mod common;

use common::*;
use drover_supervisor::{
    ChildSpec, Codec, CodecError, EncodedError, JsonCodec, MsgPackCodec, Registry, Strategy,
    Supervisor, SupervisorSpec, WorkerSpec,
};

async fn kv_with<C: Codec>(codec: C, registry: &Registry) -> Supervisor {
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::worker(
        "kv",
        WorkerSpec::<Kv>::new("kv", ()).codec(codec),
    ));
    Supervisor::start(spec, registry).await.unwrap()
}

/// Encodes a call, sends it by name, and decodes the reply.
async fn round_trip<C: Codec>(codec: &C, registry: &Registry, call: &KvCall) -> Option<String> {
    let request = codec.encode(call).unwrap();
    assert_eq!(&codec.decode::<KvCall>(&request).unwrap(), call);
    let reply = registry.call_encoded("kv", &request, SECOND).await.unwrap();
    codec.decode(&reply).unwrap()
}

async fn check_round_trips<C: Codec + Copy>(codec: C) {
    let registry = Registry::new();
    let sup = kv_with(codec, &registry).await;
    let put = KvCall::Put {
        key: "k".into(),
        value: "v1".into(),
    };
    assert_eq!(round_trip(&codec, &registry, &put).await, None);
    let put2 = KvCall::Put {
        key: "k".into(),
        value: "v2".into(),
    };
    assert_eq!(
        round_trip(&codec, &registry, &put2).await,
        Some("v1".into())
    );
    let get = KvCall::Get { key: "k".into() };
    assert_eq!(round_trip(&codec, &registry, &get).await, Some("v2".into()));
    // The typed path sees the same server.
    let kv = registry.server::<Kv>("kv");
    assert_eq!(kv.call(get, SECOND).await, Ok(Some("v2".into())));
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn json_calls_round_trip_through_call_encoded() {
    check_round_trips(JsonCodec).await;
}

#[tokio::test(start_paused = true)]
async fn msgpack_calls_round_trip_through_call_encoded() {
    check_round_trips(MsgPackCodec).await;
}

#[tokio::test(start_paused = true)]
async fn json_on_the_wire_is_plain_serde_json() {
    let registry = Registry::new();
    let sup = kv_with(JsonCodec, &registry).await;
    let put = br#"{"Put":{"key":"a","value":"1"}}"#;
    assert_eq!(
        registry.call_encoded("kv", put, SECOND).await.unwrap(),
        b"null"
    );
    let get = br#"{"Get":{"key":"a"}}"#;
    assert_eq!(
        registry.call_encoded("kv", get, SECOND).await.unwrap(),
        br#""1""#
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn encoded_casts_are_decoded_and_queued() {
    let registry = Registry::new();
    let sup = kv_with(JsonCodec, &registry).await;
    let cast = JsonCodec
        .encode(&KvCast::Put {
            key: "c".into(),
            value: "cast".into(),
        })
        .unwrap();
    registry.cast_encoded("kv", &cast).unwrap();
    let get = br#"{"Get":{"key":"c"}}"#;
    assert_eq!(
        registry.call_encoded("kv", get, SECOND).await.unwrap(),
        br#""cast""#
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn garbage_bytes_are_a_decode_error_and_the_server_lives_on() {
    let registry = Registry::new();
    let sup = kv_with(JsonCodec, &registry).await;
    for garbage in [&b"{"[..], b"\xff\xfe", br#"{"Delete":{}}"#, b""] {
        let err = registry
            .call_encoded("kv", garbage, SECOND)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EncodedError::Decode(CodecError { format: "json", .. })),
            "{err:?}"
        );
    }
    let get = br#"{"Get":{"key":"a"}}"#;
    assert_eq!(
        registry.call_encoded("kv", get, SECOND).await.unwrap(),
        b"null"
    );
    assert_eq!(sup.which_children().await.unwrap()[0].restarts, 0);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn oversized_messages_are_refused_before_decoding() {
    let registry = Registry::with_max_message_bytes(16);
    let sup = kv_with(JsonCodec, &registry).await;
    let big = br#"{"Get":{"key":"a-rather-long-key"}}"#;
    assert_eq!(
        registry.call_encoded("kv", big, SECOND).await,
        Err(EncodedError::TooLarge {
            len: big.len(),
            max: 16
        })
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_without_a_codec_or_a_missing_name_is_reported() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(probe("p", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    assert_eq!(
        registry.call_encoded("p", b"{}", SECOND).await,
        Err(EncodedError::NoCodec("p".into()))
    );
    assert_eq!(
        registry.call_encoded("nobody", b"{}", SECOND).await,
        Err(EncodedError::NotRunning("nobody".into()))
    );
    sup.shutdown().await;
}
