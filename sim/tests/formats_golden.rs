//! The SystemVerilog view of the shared formats (the packed structs of the generated
//! fv_regs_pkg) decodes the hand-written golden vectors of hw/golden/formats.toml to exactly the
//! golden field values. hw/tests/golden.rs checks the Rust view against the same file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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

/// Slot order of sim/tb/tb_formats.sv.
const SLOTS: [&str; 5] = [
    "punt_entry",
    "cpl_entry",
    "virtq_desc",
    "virtq_used_elem",
    "virtio_blk_outhdr",
];
const SLOT_BYTES: usize = 32;

fn parse_u64(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

#[test]
fn sv_packed_structs_decode_the_golden_vectors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("hw/golden/formats.toml")).unwrap();
    let golden: Golden = toml::from_str(&text).unwrap();

    // One 32-byte slot per struct, one byte per line for $readmemh.
    let mut mem = vec![0u8; SLOTS.len() * SLOT_BYTES];
    for v in &golden.vector {
        let slot = SLOTS
            .iter()
            .position(|s| *s == v.name)
            .unwrap_or_else(|| panic!("tb_formats.sv has no slot for {}", v.name));
        for (i, b) in v.bytes.split_whitespace().enumerate() {
            mem[slot * SLOT_BYTES + i] = u8::from_str_radix(b, 16).unwrap();
        }
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tb_formats");
    std::fs::create_dir_all(&dir).unwrap();
    let mem_path = dir.join("vectors.mem");
    let mem_text: String = mem.iter().map(|b| format!("{b:02x}\n")).collect();
    std::fs::write(&mem_path, mem_text).unwrap();

    let build = Command::new("verilator")
        .args(["--binary", "-Wall", "--top-module", "tb_formats", "--Mdir"])
        .arg(dir.join("obj"))
        .arg(root.join("sim/rtl/generated/fv_regs_pkg.sv"))
        .arg(root.join("sim/tb/tb_formats.sv"))
        .output()
        .expect("verilator not found: run ci/setup");
    assert!(
        build.status.success(),
        "verilator failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let out = Command::new(dir.join("obj/Vtb_formats"))
        .arg(format!("+vectors={}", mem_path.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: BTreeMap<String, u64> = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap()))
        .collect();

    let mut expected = BTreeMap::new();
    for v in &golden.vector {
        for (f, val) in &v.fields {
            expected.insert(format!("{}.{f}", v.name), parse_u64(val));
        }
    }
    assert_eq!(seen, expected, "SV decode of the golden vectors");
}
