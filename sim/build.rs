//! Builds the simulated FPGA: Verilator turns sim/rtl (and the generated CSR blocks) into C++,
//! which is compiled with the C ABI shim (csrc/fv_shim.cpp) into a static library.
//!
//! Environment: `FV_SIM_DW` sets the DMA datapath width (64, 128, 256 or 512; default 128),
//! `FV_SIM_NSLOT` the device-engine slots (1 to 16; default 2, the RTL's default).
//! Rebuilds only when an RTL file, the shim or one of those variables changes.

use std::path::{Path, PathBuf};
use std::process::Command;

const MIN_VERILATOR: (u32, u32) = (5, 6);

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: {msg}\n");
    panic!("{msg}");
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("{what}: cannot start {cmd:?}: {e}")));
    if !out.status.success() {
        fail(&format!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

fn verilator_version() -> (u32, u32) {
    let out = Command::new("verilator").arg("--version").output().unwrap_or_else(|_| {
        fail("Verilator not found on PATH. Run ci/setup (it installs Verilator 5.006 from Debian).")
    });
    let text = String::from_utf8_lossy(&out.stdout);
    // "Verilator 5.006 2023-01-22 rev ..."
    let v = text.split_whitespace().nth(1).unwrap_or("");
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn sv_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sv"))
        .collect();
    files.sort();
    files
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let rtl = manifest.join("rtl");
    let generated = rtl.join("generated");
    let shim = manifest.join("csrc");

    // CI builds the crates that must not need the simulator with this set: one that pulls it in
    // fails here instead of passing on a machine that happens to have Verilator.
    println!("cargo:rerun-if-env-changed=FV_NO_VERILATOR");
    if std::env::var_os("FV_NO_VERILATOR").is_some() {
        fail("FV_NO_VERILATOR is set, yet the simulator is being built: a crate that must build without Verilator depends on fpga-virtio-sim");
    }
    println!("cargo:rerun-if-env-changed=FV_SIM_DW");
    println!("cargo:rerun-if-env-changed=FV_SIM_X");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", rtl.display());
    println!("cargo:rerun-if-changed={}", generated.display());
    println!("cargo:rerun-if-changed={}", shim.display());

    let dw: u32 = std::env::var("FV_SIM_DW")
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| fail("FV_SIM_DW must be a number"))
        })
        .unwrap_or(128);
    if ![64, 128, 256, 512].contains(&dw) {
        fail(&format!("FV_SIM_DW={dw}: must be 64, 128, 256 or 512"));
    }
    println!("cargo:rustc-env=FV_SIM_DW={dw}");
    println!("cargo:rerun-if-env-changed=FV_SIM_NSLOT");
    let nslot: u32 = std::env::var("FV_SIM_NSLOT")
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| fail("FV_SIM_NSLOT must be a number"))
        })
        .unwrap_or(2);
    if !(1..=16).contains(&nslot) {
        fail(&format!(
            "FV_SIM_NSLOT={nslot}: must be 1 to 16 (the storage tag's slot field)"
        ));
    }

    // X handling: `fast` (default, for speed) or `unique` (every X a distinct value, flops start
    // random per FV_SIM_SEED): CI runs the tests under `unique` with several seeds, because the
    // fast set hides reset bugs.
    let x = std::env::var("FV_SIM_X").unwrap_or_else(|_| "fast".into());
    if x != "fast" && x != "unique" {
        fail(&format!("FV_SIM_X={x}: must be fast or unique"));
    }

    // Extra Verilator flags for experiments (e.g. `--prof-cfuncs`); not used by CI.
    println!("cargo:rerun-if-env-changed=FV_SIM_VFLAGS");
    let extra_flags = std::env::var("FV_SIM_VFLAGS").unwrap_or_default();

    let version = verilator_version();
    if version < MIN_VERILATOR {
        fail(&format!(
            "Verilator {}.{:03} is too old: {}.{:03} or newer is needed. Run ci/setup.",
            version.0, version.1, MIN_VERILATOR.0, MIN_VERILATOR.1
        ));
    }

    // Packages first, then the generated CSR blocks and the hand-written RTL.
    let mut files: Vec<PathBuf> = sv_files(&generated);
    files.extend(sv_files(&rtl));
    // A stable sort: the packages (generated, then hand-written) ahead of everything else.
    files.sort_by_key(|p| !p.to_string_lossy().ends_with("_pkg.sv"));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    // The generated include (the CSR blocks on the MMIO bus) that fv_top reads.
    println!(
        "cargo:rerun-if-changed={}",
        generated.join("fv_csr_bus.svh").display()
    );

    let vobj = out.join("vobj");
    let _ = std::fs::remove_dir_all(&vobj);
    let mut verilate = Command::new("verilator");
    verilate
        .args(["--cc", "--prefix", "Vfv_top", "--top-module", "fv_top"])
        .args([
            "-O3",
            "--x-assign",
            "fast",
            "--x-initial",
            "fast",
            "--noassert",
        ])
        .arg("--trace-fst")
        .args(extra_flags.split_whitespace())
        .arg(format!("-I{}", generated.display()))
        .arg(format!("-GDW={dw}"))
        .arg(format!("-GNSLOT={nslot}"))
        .arg("--Mdir")
        .arg(&vobj)
        .args(&files);
    run(&mut verilate, "verilator");

    // The model, plus Verilator's runtime objects built from the same makefile (5.006 ships no
    // libverilated.a). Every C++ file gets the same -std and -D flags.
    let defines = "-DVL_USER_FINISH -DVL_USER_STOP -DVL_USER_FATAL";
    run(
        Command::new("make")
            .arg("-C")
            .arg(&vobj)
            .args(["-f", "Vfv_top.mk", "-j2"])
            .args([
                "Vfv_top__ALL.a",
                "verilated.o",
                "verilated_threads.o",
                "verilated_fst_c.o",
            ])
            .arg("OPT_FAST=-O2")
            .arg("OPT_GLOBAL=-O2")
            .arg(format!("OPT={defines}"))
            .arg("CXXFLAGS=-fPIC"),
        "make (Verilated model)",
    );
    // Cargo links static libraries named lib<name>.a.
    std::fs::copy(vobj.join("Vfv_top__ALL.a"), out.join("libfv_top_model.a"))
        .unwrap_or_else(|e| fail(&format!("cannot copy the model library: {e}")));

    let root = String::from_utf8(
        Command::new("verilator")
            .args(["--getenv", "VERILATOR_ROOT"])
            .output()
            .unwrap_or_else(|e| fail(&format!("verilator --getenv: {e}")))
            .stdout,
    )
    .unwrap();
    let root = PathBuf::from(root.trim());

    cc::Build::new()
        .cpp(true)
        .std("gnu++17")
        .flag("-fPIC")
        .flag("-Wno-unused-parameter")
        .define("VL_USER_FINISH", None)
        .define("VL_USER_STOP", None)
        .define("VL_USER_FATAL", None)
        .define("FV_DW", dw.to_string().as_str())
        .define("VM_TRACE", "1")
        .define("VM_TRACE_FST", "1")
        .include(&vobj)
        .include(root.join("include"))
        .include(root.join("include/vltstd"))
        .file(shim.join("fv_shim.cpp"))
        .object(vobj.join("verilated.o"))
        .object(vobj.join("verilated_threads.o"))
        .object(vobj.join("verilated_fst_c.o"))
        .compile("fv_shim");

    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=fv_top_model");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    println!("cargo:rustc-link-lib=dylib=atomic");
    println!("cargo:rustc-link-lib=dylib=z");
}
