//! Generator for the fpga-virtio register map.
//!
//! `hw/regmap.toml` is the single source. [`render`] turns it into every generated file, with the
//! path (relative to the workspace root) each belongs at. `ci/regen` writes them; the test in
//! `tests/drift.rs` fails when a committed file differs from what the source generates.

pub mod md;
pub mod model;
pub mod rust;
pub mod sv;

use std::path::{Path, PathBuf};

/// The source file, relative to the workspace root.
pub const SOURCE: &str = "hw/regmap.toml";

/// Directory of the generated SystemVerilog, relative to the workspace root.
pub const SV_DIR: &str = "sim/rtl/generated";

/// One generated file.
#[derive(Debug)]
pub struct Output {
    /// Path relative to the workspace root.
    pub path: PathBuf,
    pub contents: String,
}

/// Render every generated file from the source text.
pub fn render(source_text: &str) -> Result<Vec<Output>, model::ModelError> {
    let map = model::parse(source_text)?;
    let mut out = vec![
        Output {
            path: "hw/src/regs.rs".into(),
            contents: rust::regs(&map, SOURCE),
        },
        Output {
            path: "hw/src/formats.rs".into(),
            contents: rust::formats(&map, SOURCE),
        },
        Output {
            path: Path::new(SV_DIR).join(format!("{}.sv", sv::pkg_name(&map))),
            contents: sv::package(&map, SOURCE),
        },
        Output {
            path: "docs/registers.md".into(),
            contents: md::registers(&map, SOURCE),
        },
    ];
    out.push(Output {
        path: Path::new(SV_DIR).join(sv::BUS_INCLUDE),
        contents: sv::bus(&map, SOURCE),
    });
    for b in &map.blocks {
        out.push(Output {
            path: Path::new(SV_DIR).join(format!("{}.sv", sv::csr_module_name(&map, b))),
            contents: sv::csr(&map, b, SOURCE),
        });
    }
    Ok(out)
}

/// Workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the generator lives at hw/gen inside the workspace")
}

/// Files under the generated directories that the source does not produce (stale outputs).
pub fn stale_files(root: &Path, outputs: &[Output]) -> std::io::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(root.join(SV_DIR))? {
        let rel = Path::new(SV_DIR).join(entry?.file_name());
        if !outputs.iter().any(|o| o.path == rel) {
            stale.push(rel);
        }
    }
    Ok(stale)
}
