#!/usr/bin/env python3
"""Longest register-to-register path of a design mapped by Yosys `synth_xilinx`, in LUT levels.

Reads the JSON netlist (`write_json`) of one flattened module and walks its combinational cells.
Yosys's own `ltp` counts every cell alike and walks through the mapped flip-flops (FDRE cells
are not flip-flops to it); here flip-flops, block RAMs, DSPs, shift registers and ports end a
path, and the cells on it are weighted by what they cost on an UltraScale+ part:

    LUT1..LUT6         1 level
    MUXF7/MUXF8/MUXF9  0.5 (a wide function: LUT6 + slice mux)
    CARRY8             0.25 (8 bits of a carry chain: 32 bits ~ one LUT level)
    CARRY4             0.125
    RAM*M / RAM*X*     1 (distributed RAM read, asynchronous)

Usage: synth_depth.py NETLIST.json TOP  ->  one JSON line: {"levels": L, "path": [names...]}
"""

import json
import sys


def weight(cell_type):
    if cell_type.startswith("LUT"):
        return 1.0
    if cell_type.startswith("MUXF"):
        return 0.5
    if cell_type == "CARRY8":
        return 0.25
    if cell_type == "CARRY4":
        return 0.125
    if cell_type.startswith("RAM") and not cell_type.startswith("RAMB"):
        return 1.0
    return None  # a path ends here


def main():
    path, top = sys.argv[1], sys.argv[2]
    with open(path) as f:
        design = json.load(f)
    mod = design["modules"][top]
    cells = mod["cells"]
    names = {}
    for name, net in mod["netnames"].items():
        if net.get("hide_name", 1) == 0:
            for b in net["bits"]:
                if isinstance(b, int):
                    names.setdefault(b, name)
    driver = {}
    comb = {}
    for cname, c in cells.items():
        w = weight(c["type"])
        if w is not None:
            comb[cname] = w
        for port, d in c.get("port_directions", {}).items():
            if d == "output":
                for b in c["connections"][port]:
                    if isinstance(b, int):
                        driver[b] = cname

    def inputs(cname):
        """The input bits a path goes through: every input of a logic cell; only the read
        addresses of a distributed RAM (its data and write enable are clocked)."""
        c = cells[cname]
        ram = c["type"].startswith("RAM")
        for port, d in c.get("port_directions", {}).items():
            if d != "input":
                continue
            if ram and not (port.startswith("ADDR") or port.startswith("DPRA")
                            or (port[0] == "A" and port[1:].isdigit())):
                continue
            for b in c["connections"][port]:
                if isinstance(b, int):
                    yield b

    depth = {}
    via = {}  # cell -> (input bit it came through, driving comb cell or None)
    for start in comb:
        if start in depth:
            continue
        stack = [(start, False)]
        on_path = set()
        while stack:
            cname, expanded = stack.pop()
            if cname in depth:
                continue
            if not expanded:
                if cname in on_path:
                    continue  # a combinational loop (none in a clean design): cut it here
                on_path.add(cname)
                stack.append((cname, True))
                for b in inputs(cname):
                    dcell = driver.get(b)
                    if dcell in comb and dcell not in depth and dcell not in on_path:
                        stack.append((dcell, False))
                continue
            on_path.discard(cname)
            best, best_via = 0.0, (None, None)
            for b in inputs(cname):
                dcell = driver.get(b)
                if dcell in comb:
                    v = depth.get(dcell, 0.0)
                    if v > best or best_via[0] is None:
                        best, best_via = v, (b, dcell)
                elif best_via[0] is None:
                    best_via = (b, None)
            depth[cname] = comb[cname] + best
            via[cname] = best_via
    if not depth:
        print(json.dumps({"levels": 0, "path": []}))
        return
    end = max(depth, key=depth.get)

    def outputs(cname):
        c = cells[cname]
        for port, d in c.get("port_directions", {}).items():
            if d == "output":
                for b in c["connections"][port]:
                    if isinstance(b, int):
                        yield b

    def name_of(b):
        """A public name for bit `b`: its net's, or through the buffer or flip-flop at its ends."""
        if b in names:
            return names[b]
        d = driver.get(b)
        if d is not None and cells[d]["type"] in ("IBUF", "BUFG"):
            for x in inputs(d):
                if x in names:
                    return names[x]
        return None

    # Where the path ends: the flip-flop, RAM or output port its last cell feeds (named by its
    # output net, or by the cell when that is a named memory).
    ends = set(outputs(end))
    sink = None
    for cname, c in cells.items():
        if cname == end:
            continue
        fed = {
            b
            for p, d in c.get("port_directions", {}).items()
            if d == "input"
            for b in c["connections"][p]
            if isinstance(b, int)
        }
        if not ends.intersection(fed) or (cname in comb and ends.intersection(inputs(cname))):
            continue
        for x in outputs(cname):
            sink = names.get(x) or sink
        if not sink and not cname.startswith("$"):
            sink = cname
        if sink:
            break
    trail = [sink] if sink else []
    cur = end
    while cur is not None:
        b, prev = via.get(cur, (None, None))
        n = name_of(b) if b is not None else None
        if n and (not trail or trail[-1] != n):
            trail.append(n)
        cur = prev
    trail.reverse()
    print(json.dumps({"levels": round(depth[end], 2), "path": trail}))


if __name__ == "__main__":
    main()
