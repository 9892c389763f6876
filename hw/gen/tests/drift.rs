//! The committed generated files are exactly what hw/regmap.toml generates: editing one of them by
//! hand, or the source without running ci/regen, fails here.

use fpga_virtio_hwgen::{render, stale_files, workspace_root, SOURCE};

#[test]
fn generated_files_match_the_source() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join(SOURCE)).unwrap();
    let outputs = render(&text).unwrap();
    let mut drifted = Vec::new();
    for o in &outputs {
        let committed = std::fs::read_to_string(root.join(&o.path)).unwrap_or_default();
        if committed != o.contents {
            drifted.push(o.path.display().to_string());
        }
    }
    for s in stale_files(&root, &outputs).unwrap() {
        drifted.push(format!("{} (stale)", s.display()));
    }
    assert!(
        drifted.is_empty(),
        "generated files differ from {SOURCE}: {drifted:?}; run ci/regen"
    );
}

#[test]
fn one_field_change_reaches_rust_sv_and_docs() {
    // Widen queue.q.size.size from 16 to 17 bits: all three views must change.
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join(SOURCE)).unwrap();
    let needle =
        r#"{ name = "size", bits = "15:0", sw = "rw", hw = "r", reset = 0, desc = "Entries." }"#;
    assert!(
        text.contains(needle),
        "test fixture out of date with regmap.toml"
    );
    let changed = text.replace(needle, &needle.replace("15:0", "16:0"));
    let before = render(&text).unwrap();
    let after = render(&changed).unwrap();
    let differs = |p: &str| {
        let a = before.iter().find(|o| o.path.to_str() == Some(p)).unwrap();
        let b = after.iter().find(|o| o.path.to_str() == Some(p)).unwrap();
        a.contents != b.contents
    };
    assert!(differs("hw/src/regs.rs"));
    assert!(differs("sim/rtl/generated/fv_queue_csr.sv"));
    assert!(differs("docs/registers.md"));
    let after_rs = &after
        .iter()
        .find(|o| o.path.to_str() == Some("hw/src/regs.rs"))
        .unwrap()
        .contents;
    assert!(after_rs.contains("pub const SIZE: Field = Field::new(\"size\", 0, 17);"));
}

#[test]
fn invalid_maps_are_refused_with_the_culprit_named() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join(SOURCE)).unwrap();
    let cases = [
        // Two fields on the same bit.
        (
            r#"bits = "10:8", sw = "rw", hw = "r", reset = 0, desc = "Function the queue belongs to." }"#,
            r#"bits = "3:2", sw = "rw", hw = "r", reset = 0, desc = "Function the queue belongs to." }"#,
            "overlap",
        ),
        // A reset that does not fit its field.
        (
            r#"{ name = "max_pending", bits = "7:0", sw = "rw", hw = "r", reset = 1,"#,
            r#"{ name = "max_pending", bits = "7:0", sw = "rw", hw = "r", reset = 256,"#,
            "does not fit",
        ),
        // An unsupported access combination.
        (
            r#"{ name = "value", bits = "31:0", sw = "rw", hw = "r", reset = 0, desc = "Anything." }"#,
            r#"{ name = "value", bits = "31:0", sw = "ro", hw = "r", reset = 0, desc = "Anything." }"#,
            "not a supported combination",
        ),
        // An unknown parameter.
        (
            r#"count = "NUM_QUEUES""#,
            r#"count = "NUM_QUEUEZ""#,
            "unknown parameter",
        ),
        // A read-port array holding a register software may write.
        (
            r#"{ name = "count", bits = "31:0", sw = "ro", hw = "w", desc = "Requests[31:0]." }"#,
            r#"{ name = "count", bits = "31:0", sw = "rw", hw = "r", reset = 0, desc = "R." }"#,
            "read_port = true holds only",
        ),
    ];
    for (from, to, msg) in cases {
        assert!(text.contains(from), "fixture {from:?} not in regmap.toml");
        let bad = text.replacen(from, to, 1);
        let err = render(&bad).unwrap_err().to_string();
        assert!(err.contains(msg), "expected {msg:?} in {err:?}");
    }
}
