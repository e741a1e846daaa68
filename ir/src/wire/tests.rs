use proptest::prelude::*;

use super::*;
use crate::diagnostics::render;
use crate::instructions::Inst;
use crate::module::{BlockData, Workflow};
use crate::value::Value;
use crate::Reg;

/// A small module with one workflow: `ret` of a constant.
fn tiny() -> Module {
    let mut m = Module::default();
    let c = m.intern_const(Value::from("hello"));
    m.workflows.push(Workflow {
        name: "greet".into(),
        params: vec![],
        blocks: vec![BlockData {
            label: "entry".into(),
            insts: vec![
                Inst::Const {
                    dst: Reg(0),
                    value: c,
                },
                Inst::Ret { value: Reg(0) },
            ],
        }],
    });
    m
}

/// A file with a valid header (and checksum) around an arbitrary payload.
fn framed(payload: &[u8]) -> Vec<u8> {
    let header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        payload_len: payload.len() as u32,
        checksum: crc32fast::hash(payload),
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn decode_err(bytes: &[u8]) -> DecodeError {
    match decode(bytes) {
        Ok(m) => panic!("decoded {m:?} from bad bytes"),
        Err(e) => e,
    }
}

/// The whole report a user sees on a terminal without colour.
fn rendered(err: &DecodeError) -> String {
    render(err)
}

#[cfg(feature = "arbitrary")]
mod properties {
    use super::*;
    use crate::arbitrary;

    proptest! {
        #[test]
        fn decode_inverts_encode(m in arbitrary::module()) {
            let bytes = encode(&m);
            prop_assert_eq!(read_header(&bytes).map(|h| h.payload_len as usize + HEADER_LEN), Ok(bytes.len()));
            prop_assert_eq!(decode(&bytes), Ok(m.clone()));
            // Canonical: encoding is a function of the module.
            prop_assert_eq!(encode(&m), bytes);
        }

        #[test]
        fn flipped_bits_are_refused_without_panic(
            m in arbitrary::module(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        ) {
            let mut bytes = encode(&m);
            prop_assert!(bytes.len() < 11 * 1024, "the CRC argument below needs small payloads");
            // Distinct bits only: flipping one twice would undo it.
            let flips: std::collections::BTreeSet<(usize, u8)> =
                flips.iter().map(|(at, bit)| (at.index(bytes.len()), *bit)).collect();
            for (i, bit) in flips {
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= 1 << bit;
                }
            }
            // Flips in the header break its checks; up to 3 flips in a payload
            // this small (under 11 KiB) are always caught by CRC-32, whose
            // Hamming distance there is 4.
            prop_assert!(decode(&bytes).is_err());
        }

        #[test]
        fn truncations_are_refused(m in arbitrary::module(), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&m);
            let short = bytes.get(..cut.index(bytes.len())).unwrap_or_default();
            prop_assert!(decode(short).is_err());
        }

        /// A valid frame around a damaged payload: the walk and serde see
        /// garbage that passes the checksum.
        #[test]
        fn damaged_payloads_are_refused_without_panic(
            m in arbitrary::module(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = encode(&m);
            let mut payload = bytes.get(HEADER_LEN..).unwrap_or_default().to_vec();
            let i = at.index(payload.len());
            if let Some(b) = payload.get_mut(i) {
                *b = byte;
            }
            let _ = decode(&framed(&payload));
            payload.truncate(cut.index(payload.len()));
            prop_assert!(decode(&framed(&payload)).is_err());
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let _ = read_header(&bytes);
    }

    #[test]
    fn random_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&framed(&payload));
    }

    /// Payloads made of MessagePack markers, so the walk goes deep and wide.
    #[test]
    fn random_marker_soup_never_panics(
        payload in proptest::collection::vec(
            prop_oneof![
                Just(0x91u8), Just(0x92), Just(0x81), Just(0xdc), Just(0xdd), Just(0xde),
                Just(0xdf), Just(0xc4), Just(0xd9), Just(0xa3), Just(0xff), Just(0x00),
                Just(0xc1), Just(0xcb), Just(0xc7), any::<u8>(),
            ],
            0..512,
        ),
    ) {
        let _ = decode(&framed(&payload));
    }

    #[test]
    fn hashes_parse_back(bytes in any::<[u8; 32]>()) {
        let h = ModuleHash(bytes);
        prop_assert_eq!(h.to_string().parse::<ModuleHash>(), Ok(h));
        prop_assert_eq!(h.short().len(), 12);
        prop_assert!(h.to_string().starts_with(&h.short()));
    }
}

#[test]
fn header_layout_is_fixed() {
    let bytes = encode(&tiny());
    assert_eq!(bytes.get(..4), Some(&b"DRBC"[..]));
    assert_eq!(bytes.get(4..8), Some(&[1, 0, 0, 0][..]));
    let header = read_header(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(header.payload_len as usize, bytes.len() - HEADER_LEN);
    assert_eq!(header.checksum, crc32fast::hash(&bytes[HEADER_LEN..]));
    assert_eq!(header.to_bytes()[..], bytes[..HEADER_LEN]);
}

#[test]
fn hash_follows_content() {
    let m = tiny();
    assert_eq!(m.hash(), m.hash());
    assert_eq!(m.hash(), hash_bytes(&encode(&m)));
    let mut changed = m.clone();
    changed.workflows[0].blocks[0].insts[0] = Inst::Move {
        dst: Reg(0),
        src: Reg(0),
    };
    assert_ne!(changed.hash(), m.hash());
    let mut relabelled = m.clone();
    relabelled.workflows[0].blocks[0].label = "start".into();
    assert_ne!(relabelled.hash(), m.hash());
}

#[test]
fn hash_strings() {
    let h = ModuleHash([0xab; 32]);
    assert_eq!(h.to_string(), "ab".repeat(32));
    assert_eq!(h.short(), "abababababab");
    assert_eq!(format!("{h:?}"), format!("ModuleHash({})", "ab".repeat(32)));
    for bad in [
        "",
        "ab",
        &"+f".repeat(32),
        &"gg".repeat(32),
        &"é".repeat(32),
    ] {
        assert!(bad.parse::<ModuleHash>().is_err(), "{bad:?} parsed");
    }
    let err = "xyz".parse::<ModuleHash>().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"not a module hash: expected 64 hex digits, found "xyz""#
    );
}

/// Nesting far beyond the limit is refused by the walk, before serde
/// recurses into it.
#[test]
fn deep_nesting_is_a_limit_not_a_stack_overflow() {
    let payload = vec![0x91; 1_000_000];
    let err = decode_with_limits(
        &framed(&payload),
        &Limits {
            max_bytes: usize::MAX,
            ..Limits::default()
        },
    );
    assert_eq!(
        err,
        Err(DecodeError::LimitExceeded {
            limit: "max_depth",
            max: 64,
            found: 65
        })
    );

    // A module whose constant is nested too deep.
    let mut m = tiny();
    let mut deep = Value::Null;
    for _ in 0..100 {
        deep = Value::List(vec![deep]);
    }
    m.consts.push(deep);
    assert!(matches!(
        decode(&encode(&m)),
        Err(DecodeError::LimitExceeded {
            limit: "max_depth",
            ..
        })
    ));
}

#[test]
fn default_depth_leaves_room_for_nested_values() {
    let mut m = tiny();
    let mut deep = Value::Int(1);
    for i in 0..25 {
        deep = if i % 2 == 0 {
            Value::List(vec![deep])
        } else {
            Value::record([("x", deep)])
        };
    }
    m.consts.push(deep);
    assert_eq!(decode(&encode(&m)), Ok(m));
}

#[test]
fn declared_lengths_are_held_against_the_input() {
    // An array claiming 4 billion elements, in 5 bytes.
    let huge = [0xdd, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        decode(&framed(&huge)),
        Err(DecodeError::LimitExceeded {
            limit: "max_len",
            max: 1 << 20,
            found: u32::MAX as usize
        })
    );
    let unlimited = Limits {
        max_len: usize::MAX,
        max_items: usize::MAX,
        ..Limits::default()
    };
    assert_eq!(
        decode_with_limits(&framed(&huge), &unlimited),
        Err(DecodeError::Malformed {
            offset: HEADER_LEN,
            message: "a collection declares 4294967295 elements but only 0 bytes remain".into()
        })
    );
    // A string claiming more bytes than there are.
    assert!(matches!(
        decode_with_limits(&framed(&[0xdb, 0x00, 0x10, 0x00, 0x00, b'a']), &unlimited),
        Err(DecodeError::Malformed { offset: 21, .. })
    ));
}

#[test]
fn total_items_are_limited() {
    let mut m = tiny();
    m.consts.push(Value::List(vec![Value::Null; 100]));
    let limits = Limits {
        max_items: 50,
        ..Limits::default()
    };
    assert!(matches!(
        decode_with_limits(&encode(&m), &limits),
        Err(DecodeError::LimitExceeded {
            limit: "max_items",
            max: 50,
            ..
        })
    ));
    assert_eq!(decode(&encode(&m)), Ok(m));
}

// One test per error: the exact report a user reads.

#[test]
fn bad_magic_message() {
    let err = decode_err(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    assert_eq!(
        rendered(&err),
        r#"drover::wire::bad_magic

  × not a Drover bytecode file: expected magic DRBC, found 7f 45 4c 46
  help: was this file produced by `dslc asm` or `dslc compile`?
"#
    );
}

#[test]
fn unsupported_version_message() {
    let mut bytes = encode(&tiny());
    bytes[4] = 2;
    assert_eq!(
        rendered(&decode_err(&bytes)),
        r#"drover::wire::unsupported_version

  × unsupported bytecode format version 2: this build reads version 1
  help: recompile the workflow with the `dslc` that matches this node, or run a node that reads
        version 2
"#
    );
}

#[test]
fn unknown_flags_message() {
    let mut bytes = encode(&tiny());
    bytes[6] = 0x04;
    assert_eq!(
        rendered(&decode_err(&bytes)),
        r#"drover::wire::unknown_flags

  × unknown flags 0x0004 in the bytecode header: this build knows no flags
  help: flags are reserved for newer formats; recompile the workflow with the `dslc` that matches
        this node
"#
    );
}

#[test]
fn checksum_mismatch_message() {
    let mut bytes = encode(&tiny());
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert_eq!(
        rendered(&decode_err(&bytes)),
        r#"drover::wire::checksum_mismatch

  × bytecode checksum mismatch: the header says 7d16ff5f, the payload's is 0a11cfc9
  help: the file was damaged after it was written; rebuild it or fetch it again
"#
    );
}

#[test]
fn truncated_messages() {
    let bytes = encode(&tiny());
    assert_eq!(
        rendered(&decode_err(&bytes[..10])),
        r#"drover::wire::truncated

  × file is truncated: the header needs 16 bytes, found 10
  help: the file was cut short, perhaps by an interrupted copy or upload; rebuild it or fetch it
        again
"#
    );
    assert_eq!(
        rendered(&decode_err(&bytes[..bytes.len() - 3])),
        r#"drover::wire::truncated

  × file is truncated: the header says 52 payload bytes, found 49
  help: the file was cut short, perhaps by an interrupted copy or upload; rebuild it or fetch it
        again
"#
    );
}

#[test]
fn trailing_bytes_message() {
    let mut bytes = encode(&tiny());
    bytes.extend_from_slice(b"\n\n");
    assert_eq!(
        rendered(&decode_err(&bytes)),
        r#"drover::wire::trailing_bytes

  × 2 unexpected bytes after the end of the module, at byte 68
  help: the file may be two files joined together, or damaged; rebuild it or fetch it again
"#
    );
    // Inside the payload, after the module: the checksum covers it, so the
    // walk must catch it.
    let mut payload = bytes[HEADER_LEN..bytes.len() - 2].to_vec();
    payload.push(0xc0);
    assert_eq!(
        rendered(&decode_err(&framed(&payload))),
        r#"drover::wire::trailing_bytes

  × 1 unexpected byte after the end of the module, at byte 68
  help: the file may be two files joined together, or damaged; rebuild it or fetch it again
"#
    );
}

#[test]
fn malformed_message() {
    // Well-formed MessagePack that is not a module.
    assert_eq!(
        rendered(&decode_err(&framed(&[0x93, 0x01, 0x02, 0x03]))),
        r#"drover::wire::malformed

  × malformed module at byte 18: invalid type: integer `1`, expected a sequence
  help: the header and checksum are intact, so the payload was written wrong: a bug in the tool
        that wrote it, or a file from an incompatible build
"#
    );
    assert_eq!(
        rendered(&decode_err(&framed(&[0x91, 0xc1]))),
        r#"drover::wire::malformed

  × malformed module at byte 17: byte 0xc1 is not a MessagePack marker
  help: the header and checksum are intact, so the payload was written wrong: a bug in the tool
        that wrote it, or a file from an incompatible build
"#
    );
}

#[test]
fn limit_exceeded_message() {
    let bytes = encode(&tiny());
    let limits = Limits {
        max_bytes: 16,
        ..Limits::default()
    };
    let err = decode_with_limits(&bytes, &limits).unwrap_err();
    assert_eq!(
        rendered(&err),
        r#"drover::wire::limit_exceeded

  × file is 68 bytes, more than the limit of 16
  help: this node refuses modules this large; if the module is trusted, raise `max_bytes` in the
        decoding limits
"#
    );
}
