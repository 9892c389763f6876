//! The Rust view of the shared formats against the hand-written golden vectors in
//! hw/golden/formats.toml (the SystemVerilog view is checked against the same file by
//! sim/tests/formats_golden.rs).

use fpga_virtio_hw::formats::{CplEntry, PuntEntry, VirtioBlkOuthdr, VirtqDesc, VirtqUsedElem};
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
struct Golden {
    vector: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    #[serde(rename = "struct")]
    name: String,
    bytes: String,
    fields: BTreeMap<String, String>,
}

fn parse_u64(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/golden/formats.toml"))
        .unwrap();
    toml::from_str::<Golden>(&text).unwrap().vector
}

/// Decode, compare every field, set every field on a default value, re-encode, compare bytes.
macro_rules! check {
    ($ty:ty, $v:expr) => {{
        let bytes: Vec<u8> = $v
            .bytes
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        let arr: [u8; <$ty>::SIZE] = bytes
            .as_slice()
            .try_into()
            .expect("vector length = struct size");
        let decoded = <$ty>::from_le_bytes(&arr);
        let names: Vec<&str> = $v.fields.keys().map(String::as_str).collect();
        let mut want: Vec<&str> = <$ty>::FIELDS.to_vec();
        want.sort();
        assert_eq!(
            names, want,
            "{}: golden vector must give every field",
            $v.name
        );
        let mut built = <$ty>::default();
        for (name, value) in &$v.fields {
            let value = parse_u64(value);
            assert_eq!(decoded.field(name), Some(value), "{}.{name}", $v.name);
            built.set_field(name, value).unwrap();
        }
        assert_eq!(built, decoded);
        assert_eq!(built.to_le_bytes(), arr, "{}: encoding", $v.name);
    }};
}

#[test]
fn golden_vectors_decode_and_encode() {
    let vs = vectors();
    assert_eq!(vs.len(), 5);
    for v in &vs {
        match v.name.as_str() {
            "punt_entry" => check!(PuntEntry, v),
            "cpl_entry" => check!(CplEntry, v),
            "virtq_desc" => check!(VirtqDesc, v),
            "virtq_used_elem" => check!(VirtqUsedElem, v),
            "virtio_blk_outhdr" => check!(VirtioBlkOuthdr, v),
            other => panic!("golden vector for unknown struct {other}"),
        }
    }
}

#[test]
fn set_field_refuses_values_that_do_not_fit() {
    let mut p = PuntEntry::default();
    assert!(p.set_field("qid", 0x1_0000).is_err());
    assert!(p.set_field("nope", 0).is_err());
    assert!(p.set_field("qid", 0xffff).is_ok());
}
