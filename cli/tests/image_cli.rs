//! `fpga-virtio image` end to end: keygen, pack (signed), inspect, verify, and the refusals.

use std::path::Path;
use std::process::Command;

fn fv(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fpga-virtio"))
        .args(args)
        .output()
        .expect("run fpga-virtio");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

#[test]
fn pack_inspect_verify_and_refuse() {
    let dir = std::env::temp_dir().join(format!("fv-image-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bits"),
        (0..5000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let (ok, out) = fv(&["image", "keygen", "-o", &p(&dir, "key")]);
    assert!(ok, "{out}");
    let (ok, out) = fv(&["image", "keygen", "-o", &p(&dir, "other")]);
    assert!(ok, "{out}");
    let (ok, out) = fv(&[
        "image",
        "pack",
        "--bitstream",
        &p(&dir, "bits"),
        "--version",
        "1.4.0",
        "--notes",
        "test build",
        "--build-date",
        "1700000000",
        "--sign",
        &p(&dir, "key"),
        "-o",
        &p(&dir, "fw.img"),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = fv(&["image", "inspect", &p(&dir, "fw.img")]);
    assert!(ok, "{out}");
    assert!(out.contains("firmware version 1.4.0"), "{out}");
    assert!(
        out.contains("bitstream") && out.contains("5000 bytes"),
        "{out}"
    );
    assert!(out.contains("digest ok"), "{out}");

    let (ok, out) = fv(&[
        "image",
        "verify",
        &p(&dir, "fw.img"),
        "--trusted-key",
        &p(&dir, "key.pub"),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("signature verified"), "{out}");
    let (ok, out) = fv(&[
        "image",
        "verify",
        &p(&dir, "fw.img"),
        "--trusted-key",
        &p(&dir, "other.pub"),
    ]);
    assert!(!ok && out.contains("signature does not verify"), "{out}");

    // One byte changed in the bitstream: the digest names both values.
    let mut b = std::fs::read(dir.join("fw.img")).unwrap();
    b[400] ^= 0x40;
    std::fs::write(dir.join("bad.img"), &b).unwrap();
    let (ok, out) = fv(&["image", "verify", &p(&dir, "bad.img")]);
    assert!(!ok && out.contains("digest mismatch"), "{out}");
    // Truncated.
    std::fs::write(dir.join("short.img"), &b[..300]).unwrap();
    let (ok, out) = fv(&["image", "verify", &p(&dir, "short.img")]);
    assert!(!ok && out.contains("truncated"), "{out}");
    // An unsigned image when a key is configured.
    let (ok, _) = fv(&[
        "image",
        "pack",
        "--bitstream",
        &p(&dir, "bits"),
        "--version",
        "1.4.1",
        "-o",
        &p(&dir, "unsigned.img"),
    ]);
    assert!(ok);
    let (ok, out) = fv(&[
        "image",
        "verify",
        &p(&dir, "unsigned.img"),
        "--trusted-key",
        &p(&dir, "key.pub"),
    ]);
    assert!(!ok && out.contains("not signed"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flash_and_info_on_the_simulated_device() {
    let dir = std::env::temp_dir().join(format!("fv-flash-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bits"), vec![0x5a; 3000]).unwrap();
    let flash = p(&dir, "flash.bin");
    let (ok, out) = fv(&["info", "--flash-file", &flash]);
    assert!(ok, "{out}");
    assert!(out.contains("booted slot golden"), "{out}");
    let (ok, out) = fv(&["image", "keygen", "-o", &p(&dir, "key")]);
    assert!(ok, "{out}");
    for v in ["1.0.0", "1.1.0"] {
        let (ok, out) = fv(&[
            "image",
            "pack",
            "--bitstream",
            &p(&dir, "bits"),
            "--version",
            v,
            "--sign",
            &p(&dir, "key"),
            "-o",
            &p(&dir, &format!("{v}.img")),
        ]);
        assert!(ok, "{out}");
    }
    let (ok, out) = fv(&[
        "flash",
        &p(&dir, "1.0.0.img"),
        "--trusted-key",
        &p(&dir, "key.pub"),
        "--flash-file",
        &flash,
        "--json",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("\"slot\": \"a\""), "{out}");
    let (ok, out) = fv(&["flash", &p(&dir, "1.1.0.img"), "--flash-file", &flash]);
    assert!(ok, "{out}");
    assert!(
        out.contains("into slot b") && out.contains("now running 1.1.0"),
        "{out}"
    );
    // The flash file keeps it across runs; a downgrade needs --force.
    let (ok, out) = fv(&["info", "--flash-file", &flash, "--json"]);
    assert!(
        ok && out.contains("\"version\": \"1.1.0\"") && out.contains("\"booted\": \"b\""),
        "{out}"
    );
    let (ok, out) = fv(&["flash", &p(&dir, "1.0.0.img"), "--flash-file", &flash]);
    assert!(!ok && out.contains("older than the running 1.1.0"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
