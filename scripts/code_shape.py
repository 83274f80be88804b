#!/usr/bin/env python3
"""code_shape.py - the shape of the C code, measured the same way each time.

    scripts/code_shape.py [--top N] [--check]

Prints the largest source files, the longest functions and the include
graph's cycles between modules (a module is a .c/.h pair, such as
agent/push).  A function is counted from its opening brace in column 0
to its closing brace in column 0, the layout .clang-format gives.
With --check, exits 1 when modules include each other in a cycle.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ("agent", "crypto", "hq", "sync", "web")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"')
NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def sources():
    for d in DIRS:
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if name.endswith((".c", ".h")):
                yield os.path.join(d, name)


def functions(path):
    """(name, lines) of each function defined in path."""
    lines = open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")
    out = []
    for i, line in enumerate(lines):
        if line != "{" or i == 0:
            continue
        # The signature: the lines above, back to one that starts it.
        k = i - 1
        while k > 0 and lines[k].startswith(("\t", " ")):
            k -= 1
        m = NAME.search(" ".join(lines[k:i]))
        end = i + 1
        while end < len(lines) and lines[end] != "}":
            end += 1
        if m and not lines[k].startswith(("struct", "enum", "union", "typedef", "static const")):
            out.append((m.group(1), end - k + 1))
    return out


def graph():
    edges = {}
    for path in sources():
        module = path.rsplit(".", 1)[0]
        for line in open(os.path.join(ROOT, path), encoding="utf-8"):
            m = INCLUDE.match(line)
            if m and m.group(1) != module and m.group(1).split("/")[0] in DIRS:
                edges.setdefault(module, set()).add(m.group(1))
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    top = 10
    check = "--check" in sys.argv
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
    files = sorted(((sum(1 for _ in open(os.path.join(ROOT, p), encoding="utf-8")), p)
                    for p in sources()), reverse=True)
    print("largest files (lines):")
    for n, p in files[:top]:
        print("  %5d  %s" % (n, p))
    funcs = sorted(((n, "%s %s()" % (p, f)) for p in sources() if p.endswith(".c")
                    for f, n in functions(p)), reverse=True)
    print("longest functions (lines):")
    for n, f in funcs[:top]:
        print("  %5d  %s" % (n, f))
    found = cycles(graph())
    print("include cycles between modules: %s" % ("none" if not found else len(found)))
    for scc in found:
        print("  " + " <-> ".join(scc))
    return 1 if check and found else 0


if __name__ == "__main__":
    sys.exit(main())
