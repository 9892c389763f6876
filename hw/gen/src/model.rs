//! The register map: parsed from TOML, resolved (parameters, implicit block headers, NEXT links) and
//! validated once. Every emitter works from the resolved [`Map`] only.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Errors in the register-map source. Each names the thing that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("regmap.toml does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("{0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ModelError> {
    Err(ModelError::Invalid(msg.into()))
}

// ------------------------------------------------------------------------------------------------
// Source format (what regmap.toml says).

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    device: SrcDevice,
    #[serde(default)]
    param: Vec<SrcParam>,
    #[serde(default, rename = "enum")]
    enums: Vec<SrcEnum>,
    #[serde(default)]
    bar: Vec<SrcBar>,
    #[serde(default)]
    block: Vec<SrcBlock>,
    #[serde(default, rename = "struct")]
    structs: Vec<SrcStruct>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcDevice {
    name: String,
    prefix: String,
    map_version: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcParam {
    name: String,
    value: u64,
    desc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcEnum {
    name: String,
    width: u32,
    desc: String,
    values: Vec<SrcEnumValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcEnumValue {
    name: String,
    value: u64,
    desc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcBar {
    index: u8,
    name: String,
    size: u64,
    desc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcBlock {
    name: String,
    bar: u8,
    offset: u64,
    size: u64,
    #[serde(default = "default_true")]
    header: bool,
    type_id: Option<u32>,
    version: Option<u32>,
    /// "device" (default): the block resets with the device (GLOBAL.CTRL.reset, a reboot);
    /// "bus": only with the bus (the registers that control the device reset itself).
    #[serde(default)]
    reset: SrcReset,
    desc: String,
    #[serde(default)]
    reg: Vec<SrcReg>,
    #[serde(default)]
    array: Vec<SrcArray>,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum SrcReset {
    #[default]
    Device,
    Bus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcArray {
    name: String,
    offset: u64,
    count: NumOrParam,
    stride: NumOrParam,
    desc: String,
    /// Hardware serves the elements' values through a read port (the CSR block names the
    /// element a read addresses) instead of presenting every element at once: for counters and
    /// status kept in RAM. Every field must be `sw = "ro", hw = "w"`.
    #[serde(default)]
    read_port: bool,
    reg: Vec<SrcReg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcReg {
    name: String,
    offset: u64,
    desc: String,
    fields: Vec<SrcField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcField {
    name: String,
    bits: String,
    sw: String,
    hw: String,
    reset: Option<NumOrParam>,
    #[serde(rename = "enum")]
    enum_name: Option<String>,
    desc: String,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum NumOrParam {
    Num(u64),
    Param(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcStruct {
    name: String,
    size: u32,
    desc: String,
    fields: Vec<SrcStructField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrcStructField {
    name: String,
    offset: u32,
    #[serde(rename = "type")]
    ty: String,
    #[serde(rename = "enum")]
    enum_name: Option<String>,
    desc: String,
}

// ------------------------------------------------------------------------------------------------
// Resolved model.

/// The whole resolved register map.
#[derive(Debug)]
pub struct Map {
    pub name: String,
    pub prefix: String,
    pub map_version: u32,
    pub params: Vec<Param>,
    pub enums: Vec<Enum>,
    pub bars: Vec<Bar>,
    pub blocks: Vec<Block>,
    pub structs: Vec<Struct>,
}

#[derive(Debug)]
pub struct Param {
    pub name: String,
    pub value: u64,
    pub desc: String,
}

#[derive(Debug)]
pub struct Enum {
    pub name: String,
    pub width: u32,
    pub desc: String,
    pub values: Vec<EnumValue>,
}

#[derive(Debug)]
pub struct EnumValue {
    pub name: String,
    pub value: u64,
    pub desc: String,
}

#[derive(Debug)]
pub struct Bar {
    pub index: u8,
    pub name: String,
    pub size: u64,
    pub desc: String,
}

#[derive(Debug)]
pub struct Block {
    pub name: String,
    pub bar: u8,
    pub offset: u64,
    pub size: u64,
    /// `Some((type_id, version, next))` for self-describing blocks.
    pub header: Option<(u32, u32, u64)>,
    /// Reset only with the bus, not with the device's soft reset.
    pub bus_reset: bool,
    pub desc: String,
    pub regs: Vec<Reg>,
    pub arrays: Vec<Array>,
}

#[derive(Debug)]
pub struct Array {
    pub name: String,
    /// Offset of element 0 within the block.
    pub offset: u64,
    pub count: u64,
    /// Parameter the count came from, if any (emitted symbolically where it helps).
    pub count_param: Option<String>,
    pub stride: u64,
    pub desc: String,
    /// Values come through a read port: `<block>_<array>_rd_idx` out, one element's fields in.
    pub read_port: bool,
    pub regs: Vec<Reg>,
}

#[derive(Debug)]
pub struct Reg {
    pub name: String,
    /// Offset within the block (plain registers) or within one array element.
    pub offset: u64,
    pub desc: String,
    pub fields: Vec<Field>,
}

/// What the driver may do with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sw {
    Ro,
    Rw,
    Wo,
    W1c,
}

/// What the logic does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hw {
    /// Reads a stored value.
    R,
    /// Drives the value live.
    W,
    /// Reads a stored value and may overwrite it.
    Rw,
    /// Constant (the reset value).
    Const,
    /// Gets a strobe (and the value) on a driver write.
    Pulse,
    /// Sets a sticky bit.
    Set,
}

impl fmt::Display for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sw::Ro => "ro",
            Sw::Rw => "rw",
            Sw::Wo => "wo",
            Sw::W1c => "w1c",
        })
    }
}

impl fmt::Display for Hw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hw::R => "r",
            Hw::W => "w",
            Hw::Rw => "rw",
            Hw::Const => "const",
            Hw::Pulse => "pulse",
            Hw::Set => "set",
        })
    }
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub lsb: u32,
    pub width: u32,
    pub sw: Sw,
    pub hw: Hw,
    pub reset: u64,
    pub reset_param: Option<String>,
    pub enum_name: Option<String>,
    pub desc: String,
}

impl Field {
    pub fn msb(&self) -> u32 {
        self.lsb + self.width - 1
    }
    pub fn mask(&self) -> u32 {
        (((1u64 << self.width) - 1) << self.lsb) as u32
    }
    /// True when the logic keeps a flop for the field.
    pub fn stored(&self) -> bool {
        matches!(self.hw, Hw::R | Hw::Rw | Hw::Set | Hw::Pulse)
    }
}

impl Reg {
    /// The register's value after reset.
    pub fn reset(&self) -> u32 {
        self.fields
            .iter()
            .map(|f| ((f.reset as u32) << f.lsb) & f.mask())
            .fold(0, |a, b| a | b)
    }
    /// Bits the driver can write and read back.
    pub fn rw_mask(&self) -> u32 {
        self.mask_of(|f| f.sw == Sw::Rw)
    }
    pub fn w1c_mask(&self) -> u32 {
        self.mask_of(|f| f.sw == Sw::W1c)
    }
    pub fn wo_mask(&self) -> u32 {
        self.mask_of(|f| f.sw == Sw::Wo)
    }
    fn mask_of(&self, pred: impl Fn(&Field) -> bool) -> u32 {
        self.fields
            .iter()
            .filter(|f| pred(f))
            .fold(0, |a, f| a | f.mask())
    }
}

/// A C-layout, little-endian structure in shared memory.
#[derive(Debug)]
pub struct Struct {
    pub name: String,
    pub size: u32,
    pub desc: String,
    pub fields: Vec<StructField>,
}

#[derive(Debug)]
pub struct StructField {
    pub name: String,
    pub offset: u32,
    /// Bytes: 1, 2, 4 or 8.
    pub bytes: u32,
    pub enum_name: Option<String>,
    pub desc: String,
}

impl StructField {
    pub fn rust_type(&self) -> &'static str {
        match self.bytes {
            1 => "u8",
            2 => "u16",
            4 => "u32",
            _ => "u64",
        }
    }
}

impl Map {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn bar(&self, index: u8) -> &Bar {
        self.bars
            .iter()
            .find(|b| b.index == index)
            .expect("validated: every block's BAR exists")
    }
}

// ------------------------------------------------------------------------------------------------
// Resolution and validation.

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Words SystemVerilog or Rust reserve: a name must work unchanged in every generated view.
const KEYWORDS: &[&str] = &[
    "always",
    "assign",
    "begin",
    "bind",
    "bit",
    "break",
    "byte",
    "case",
    "class",
    "const",
    "continue",
    "crate",
    "default",
    "do",
    "dyn",
    "edge",
    "else",
    "end",
    "enum",
    "event",
    "export",
    "extern",
    "final",
    "fn",
    "for",
    "function",
    "generate",
    "genvar",
    "if",
    "impl",
    "import",
    "in",
    "initial",
    "inout",
    "input",
    "int",
    "integer",
    "interface",
    "let",
    "logic",
    "loop",
    "match",
    "mod",
    "module",
    "move",
    "mut",
    "negedge",
    "new",
    "null",
    "output",
    "package",
    "packed",
    "parameter",
    "posedge",
    "priority",
    "pub",
    "real",
    "ref",
    "reg",
    "return",
    "self",
    "signed",
    "static",
    "string",
    "struct",
    "super",
    "task",
    "this",
    "time",
    "trait",
    "type",
    "typedef",
    "union",
    "unique",
    "unsigned",
    "use",
    "var",
    "virtual",
    "void",
    "where",
    "while",
    "wire",
];

fn check_ident(what: &str, s: &str) -> Result<(), ModelError> {
    if KEYWORDS.contains(&s) {
        return invalid(format!(
            "{what} name {s:?} is a SystemVerilog or Rust keyword; pick another"
        ));
    }
    if is_ident(s) {
        Ok(())
    } else {
        invalid(format!(
            "{what} name {s:?} must be lower_snake_case ([a-z][a-z0-9_]*)"
        ))
    }
}

fn parse_bits(where_: &str, bits: &str) -> Result<(u32, u32), ModelError> {
    let parse = |s: &str| {
        s.trim().parse::<u32>().map_err(|_| {
            ModelError::Invalid(format!("{where_}: bits {bits:?} is not `msb:lsb` or `bit`"))
        })
    };
    let (msb, lsb) = match bits.split_once(':') {
        Some((m, l)) => (parse(m)?, parse(l)?),
        None => {
            let b = parse(bits)?;
            (b, b)
        }
    };
    if msb < lsb || msb > 31 {
        return invalid(format!(
            "{where_}: bits {bits:?} must satisfy 31 >= msb >= lsb"
        ));
    }
    Ok((lsb, msb - lsb + 1))
}

struct Resolver<'a> {
    params: &'a BTreeMap<String, u64>,
    enums: &'a BTreeMap<String, u32>,
}

impl Resolver<'_> {
    fn value(&self, where_: &str, v: &NumOrParam) -> Result<(u64, Option<String>), ModelError> {
        match v {
            NumOrParam::Num(n) => Ok((*n, None)),
            NumOrParam::Param(p) => match self.params.get(p) {
                Some(n) => Ok((*n, Some(p.clone()))),
                None => invalid(format!("{where_}: unknown parameter {p:?}")),
            },
        }
    }

    fn reg(&self, where_: &str, r: &SrcReg, span: u64) -> Result<Reg, ModelError> {
        check_ident("register", &r.name)?;
        let where_ = format!("{where_}.{}", r.name);
        if !r.offset.is_multiple_of(4) || r.offset + 4 > span {
            return invalid(format!(
                "{where_}: offset {:#x} must be 4-byte aligned and inside the {span:#x}-byte span",
                r.offset
            ));
        }
        if r.fields.is_empty() {
            return invalid(format!("{where_}: a register needs at least one field"));
        }
        let mut used = 0u32;
        let mut names = BTreeSet::new();
        let mut fields = Vec::new();
        for f in &r.fields {
            check_ident("field", &f.name)?;
            let fw = format!("{where_}.{}", f.name);
            if !names.insert(f.name.clone()) {
                return invalid(format!("{fw}: duplicate field name"));
            }
            let (lsb, width) = parse_bits(&fw, &f.bits)?;
            let mask = (((1u64 << width) - 1) << lsb) as u32;
            if used & mask != 0 {
                return invalid(format!("{fw}: bits {} overlap another field", f.bits));
            }
            used |= mask;
            let sw = match f.sw.as_str() {
                "ro" => Sw::Ro,
                "rw" => Sw::Rw,
                "wo" => Sw::Wo,
                "w1c" => Sw::W1c,
                other => return invalid(format!("{fw}: sw {other:?} is not ro, rw, wo or w1c")),
            };
            let hw = match f.hw.as_str() {
                "r" => Hw::R,
                "w" => Hw::W,
                "rw" => Hw::Rw,
                "const" => Hw::Const,
                "pulse" => Hw::Pulse,
                "set" => Hw::Set,
                other => {
                    return invalid(format!(
                        "{fw}: hw {other:?} is not r, w, rw, const, pulse or set"
                    ))
                }
            };
            let ok = matches!(
                (sw, hw),
                (Sw::Rw, Hw::R)
                    | (Sw::Rw, Hw::Rw)
                    | (Sw::Ro, Hw::W)
                    | (Sw::Ro, Hw::Const)
                    | (Sw::Wo, Hw::Pulse)
                    | (Sw::W1c, Hw::Set)
            );
            if !ok {
                return invalid(format!(
                    "{fw}: sw={sw} with hw={hw} is not a supported combination \
                     (rw/r, rw/rw, ro/w, ro/const, wo/pulse, w1c/set)"
                ));
            }
            let needs_reset = matches!(hw, Hw::R | Hw::Rw | Hw::Const | Hw::Set);
            let (reset, reset_param) = match (&f.reset, needs_reset) {
                (Some(v), true) => self.value(&fw, v)?,
                (None, true) => {
                    return invalid(format!("{fw}: sw={sw} hw={hw} needs a reset value"))
                }
                (Some(_), false) => {
                    return invalid(format!(
                        "{fw}: hw={hw} fields have no storage; remove `reset`"
                    ))
                }
                (None, false) => (0, None),
            };
            if width < 64 && reset >> width != 0 {
                return invalid(format!(
                    "{fw}: reset {reset:#x} does not fit in {width} bits"
                ));
            }
            if let Some(e) = &f.enum_name {
                match self.enums.get(e) {
                    None => return invalid(format!("{fw}: unknown enum {e:?}")),
                    Some(w) if *w != width => {
                        return invalid(format!(
                            "{fw}: enum {e} is {w} bits wide, the field {width}"
                        ))
                    }
                    Some(_) => {}
                }
            }
            fields.push(Field {
                name: f.name.clone(),
                lsb,
                width,
                sw,
                hw,
                reset,
                reset_param,
                enum_name: f.enum_name.clone(),
                desc: f.desc.clone(),
            });
        }
        fields.sort_by_key(|f| f.lsb);
        Ok(Reg {
            name: r.name.clone(),
            offset: r.offset,
            desc: r.desc.clone(),
            fields,
        })
    }
}

fn check_no_overlap(where_: &str, mut spans: Vec<(u64, u64, String)>) -> Result<(), ModelError> {
    spans.sort();
    for w in spans.windows(2) {
        if w[0].1 > w[1].0 {
            return invalid(format!(
                "{where_}: {} [{:#x}, {:#x}) overlaps {} at {:#x}",
                w[0].2, w[0].0, w[0].1, w[1].2, w[1].0
            ));
        }
    }
    Ok(())
}

fn const_field(name: &str, value: u64, desc: &str) -> Field {
    Field {
        name: name.into(),
        lsb: 0,
        width: 32,
        sw: Sw::Ro,
        hw: Hw::Const,
        reset: value,
        reset_param: None,
        enum_name: None,
        desc: desc.into(),
    }
}

/// Names the emitters use for a block's own constants.
const RESERVED_BLOCK_NAMES: &[&str] = &[
    "bar",
    "base",
    "size",
    "type_id",
    "version_id",
    "next_offset",
];
/// Names the emitters use for an array's own constants.
const RESERVED_ARRAY_NAMES: &[&str] = &["array_base", "count", "stride"];

/// Parse and validate the register map source.
pub fn parse(text: &str) -> Result<Map, ModelError> {
    let src: Source = toml::from_str(text)?;
    if !is_ident(&src.device.prefix) {
        return invalid("device.prefix must be lower_snake_case");
    }

    let mut params = BTreeMap::new();
    for p in &src.param {
        if !p
            .name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return invalid(format!("parameter {:?} must be UPPER_SNAKE_CASE", p.name));
        }
        if params.insert(p.name.clone(), p.value).is_some() {
            return invalid(format!("parameter {} defined twice", p.name));
        }
    }

    let mut enums = BTreeMap::new();
    for e in &src.enums {
        check_ident("enum", &e.name)?;
        if e.width == 0 || e.width > 32 {
            return invalid(format!("enum {}: width must be 1..=32", e.name));
        }
        let mut seen = BTreeSet::new();
        for v in &e.values {
            check_ident("enum value", &v.name)?;
            if v.value >> e.width != 0 {
                return invalid(format!(
                    "enum {}: {} = {} does not fit in {} bits",
                    e.name, v.name, v.value, e.width
                ));
            }
            if !seen.insert(v.value) {
                return invalid(format!("enum {}: value {} used twice", e.name, v.value));
            }
        }
        if enums.insert(e.name.clone(), e.width).is_some() {
            return invalid(format!("enum {} defined twice", e.name));
        }
    }
    let res = Resolver {
        params: &params,
        enums: &enums,
    };

    let mut bars = Vec::new();
    for b in &src.bar {
        if !b.size.is_power_of_two() || b.size < 0x1000 {
            return invalid(format!(
                "BAR{}: size {:#x} must be a power of two >= 4 KiB",
                b.index, b.size
            ));
        }
        if bars.iter().any(|x: &Bar| x.index == b.index) {
            return invalid(format!("BAR{} defined twice", b.index));
        }
        bars.push(Bar {
            index: b.index,
            name: b.name.clone(),
            size: b.size,
            desc: b.desc.clone(),
        });
    }

    // Header blocks of each BAR form a linked list in offset order.
    let mut blocks = Vec::new();
    let mut names = BTreeSet::new();
    for b in &src.block {
        check_ident("block", &b.name)?;
        if !names.insert(b.name.clone()) {
            return invalid(format!("block {} defined twice", b.name));
        }
        let Some(bar) = bars.iter().find(|x| x.index == b.bar) else {
            return invalid(format!("block {}: BAR{} is not declared", b.name, b.bar));
        };
        if !b.size.is_power_of_two() || b.size < 0x10 || b.offset % b.size != 0 {
            return invalid(format!(
                "block {}: size {:#x} must be a power of two and offset {:#x} a multiple of it",
                b.name, b.size, b.offset
            ));
        }
        if b.offset + b.size > bar.size {
            return invalid(format!("block {} does not fit in BAR{}", b.name, b.bar));
        }
        let mut regs = Vec::new();
        let header = if b.header {
            let (Some(t), Some(v)) = (b.type_id, b.version) else {
                return invalid(format!(
                    "block {}: a self-describing block needs type_id and version",
                    b.name
                ));
            };
            // NEXT is filled in below, once every block is known.
            Some((t, v, 0))
        } else {
            if b.type_id.is_some() || b.version.is_some() {
                return invalid(format!(
                    "block {}: type_id/version need header = true",
                    b.name
                ));
            }
            None
        };
        for r in &b.reg {
            if RESERVED_BLOCK_NAMES.contains(&r.name.as_str()) {
                return invalid(format!(
                    "block {}: register name {} is reserved ({RESERVED_BLOCK_NAMES:?})",
                    b.name, r.name
                ));
            }
            regs.push(res.reg(&b.name, r, b.size)?);
        }
        let mut arrays = Vec::new();
        for a in &b.array {
            check_ident("array", &a.name)?;
            let aw = format!("{}.{}", b.name, a.name);
            let (count, count_param) = res.value(&aw, &a.count)?;
            let (stride, _) = res.value(&aw, &a.stride)?;
            if count == 0 || stride % 4 != 0 || stride == 0 {
                return invalid(format!(
                    "{aw}: count must be > 0 and stride a non-zero multiple of 4"
                ));
            }
            if !count.is_power_of_two() || count < 2 {
                return invalid(format!(
                    "{aw}: count {count} must be a power of two >= 2 (the CSR decodes the index from address bits)"
                ));
            }
            if !stride.is_power_of_two() || a.offset % stride != 0 {
                return invalid(format!(
                    "{aw}: stride {stride:#x} must be a power of two and offset {:#x} a multiple of it",
                    a.offset
                ));
            }
            if a.offset + count * stride > b.size {
                return invalid(format!(
                    "{aw}: {count} x {stride:#x} bytes overflow the block"
                ));
            }
            let mut aregs = Vec::new();
            for r in &a.reg {
                if RESERVED_ARRAY_NAMES.contains(&r.name.as_str()) {
                    return invalid(format!(
                        "{aw}: register name {} is reserved ({RESERVED_ARRAY_NAMES:?})",
                        r.name
                    ));
                }
                aregs.push(res.reg(&aw, r, stride)?);
            }
            if a.read_port
                && aregs
                    .iter()
                    .flat_map(|r| &r.fields)
                    .any(|f| f.hw != Hw::W || f.sw != Sw::Ro)
            {
                return invalid(format!(
                    "{aw}: an array with read_port = true holds only sw = \"ro\", hw = \"w\" fields"
                ));
            }
            check_no_overlap(
                &aw,
                aregs
                    .iter()
                    .map(|r| (r.offset, r.offset + 4, r.name.clone()))
                    .collect(),
            )?;
            arrays.push(Array {
                name: a.name.clone(),
                offset: a.offset,
                count,
                count_param,
                stride,
                desc: a.desc.clone(),
                read_port: a.read_port,
                regs: aregs,
            });
        }
        if header.is_some() {
            let hdr = [
                ("block_type", "TYPE: block type id."),
                (
                    "block_version",
                    "VERSION: block version (major << 16 | minor).",
                ),
                (
                    "block_next",
                    "NEXT: BAR offset of the next block; 0 ends the list.",
                ),
            ];
            for (i, (n, d)) in hdr.iter().enumerate() {
                if regs.iter().any(|r: &Reg| r.name == *n) {
                    return invalid(format!(
                        "block {}: register name {n} is reserved for the header",
                        b.name
                    ));
                }
                regs.insert(
                    i,
                    Reg {
                        name: (*n).into(),
                        offset: 4 * i as u64,
                        desc: d.to_string(),
                        fields: vec![const_field(
                            match *n {
                                "block_type" => "id",
                                "block_version" => "version",
                                _ => "offset",
                            },
                            0,
                            d,
                        )],
                    },
                );
            }
        }
        let mut spans: Vec<_> = regs
            .iter()
            .map(|r| (r.offset, r.offset + 4, r.name.clone()))
            .collect();
        spans.extend(
            arrays
                .iter()
                .map(|a| (a.offset, a.offset + a.count * a.stride, a.name.clone())),
        );
        check_no_overlap(&b.name, spans)?;
        blocks.push(Block {
            name: b.name.clone(),
            bar: b.bar,
            offset: b.offset,
            size: b.size,
            header,
            bus_reset: b.reset == SrcReset::Bus,
            desc: b.desc.clone(),
            regs,
            arrays,
        });
    }
    for bar in &bars {
        check_no_overlap(
            &format!("BAR{}", bar.index),
            blocks
                .iter()
                .filter(|b| b.bar == bar.index)
                .map(|b| (b.offset, b.offset + b.size, b.name.clone()))
                .collect(),
        )?;
    }
    blocks.sort_by_key(|b| (b.bar, b.offset));
    // Link the self-describing blocks of each BAR and fill in their header constants.
    let mut next_of = BTreeMap::new();
    for bar in &bars {
        let offs: Vec<u64> = blocks
            .iter()
            .filter(|b| b.bar == bar.index && b.header.is_some())
            .map(|b| b.offset)
            .collect();
        if let Some(first) = offs.first() {
            if *first != 0 {
                return invalid(format!(
                    "BAR{}: the block list must start at offset 0",
                    bar.index
                ));
            }
        }
        for (i, o) in offs.iter().enumerate() {
            next_of.insert((bar.index, *o), offs.get(i + 1).copied().unwrap_or(0));
        }
    }
    for b in &mut blocks {
        if let Some((t, v, next)) = b.header.as_mut() {
            *next = next_of[&(b.bar, b.offset)];
            let vals = [*t as u64, *v as u64, *next];
            for (r, val) in b.regs.iter_mut().zip(vals) {
                r.fields[0].reset = val;
            }
        }
    }

    let mut structs = Vec::new();
    for s in &src.structs {
        check_ident("struct", &s.name)?;
        let mut at = 0;
        let mut fields = Vec::new();
        for f in &s.fields {
            check_ident("struct field", &f.name)?;
            let bytes = match f.ty.as_str() {
                "u8" => 1,
                "u16" => 2,
                "u32" => 4,
                "u64" => 8,
                t => {
                    return invalid(format!(
                        "{}.{}: type {t} is not u8/u16/u32/u64",
                        s.name, f.name
                    ))
                }
            };
            if f.offset != at || f.offset % bytes != 0 {
                return invalid(format!(
                    "{}.{}: offset {} must be {at} (fields are listed in order, without gaps) and naturally aligned",
                    s.name, f.name, f.offset
                ));
            }
            if let Some(e) = &f.enum_name {
                match enums.get(e) {
                    Some(w) if *w <= bytes * 8 => {}
                    _ => {
                        return invalid(format!(
                            "{}.{}: enum {e:?} unknown or too wide",
                            s.name, f.name
                        ))
                    }
                }
            }
            at += bytes;
            fields.push(StructField {
                name: f.name.clone(),
                offset: f.offset,
                bytes,
                enum_name: f.enum_name.clone(),
                desc: f.desc.clone(),
            });
        }
        if at != s.size {
            return invalid(format!(
                "struct {}: fields cover {at} bytes, size says {}",
                s.name, s.size
            ));
        }
        structs.push(Struct {
            name: s.name.clone(),
            size: s.size,
            desc: s.desc.clone(),
            fields,
        });
    }

    Ok(Map {
        name: src.device.name,
        prefix: src.device.prefix,
        map_version: src.device.map_version,
        params: src
            .param
            .into_iter()
            .map(|p| Param {
                name: p.name,
                value: p.value,
                desc: p.desc,
            })
            .collect(),
        enums: src
            .enums
            .into_iter()
            .map(|e| Enum {
                name: e.name,
                width: e.width,
                desc: e.desc,
                values: e
                    .values
                    .into_iter()
                    .map(|v| EnumValue {
                        name: v.name,
                        value: v.value,
                        desc: v.desc,
                    })
                    .collect(),
            })
            .collect(),
        bars,
        blocks,
        structs,
    })
}

/// `snake_case` to `UpperCamelCase`.
pub fn camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}
