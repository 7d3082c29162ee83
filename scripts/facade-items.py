#!/usr/bin/env python3
"""List the public items reachable from the bpfvm facade (crates/bpfvm/src/lib.rs).

Method (source walk, no rustdoc JSON on stable):
- start at the facade's lib.rs; for every module reachable through `pub mod`
  (file or inline) list its top-level `pub` items (fn, struct, enum, trait,
  const, static, type, union, macro), skipping `pub(crate)`/`pub(super)`,
  items inside impl blocks and private modules;
- every `pub use` is resolved into the crate it names (bpfvm_isa, bpfvm_obj,
  bpfvm_vm, bpfvm_maps, bpfvm_verifier, or a module of the facade itself):
  a named item counts as one item at its facade path; a re-exported module and
  a glob (`*`) are expanded into every public item they make reachable;
- public fields of every listed struct are listed as `path.field` (they are
  API too); methods are not listed;
- items under `#[doc(hidden)]` (or in a doc-hidden module) are marked [hidden].
Output: one line per item, `kind path [hidden]`, sorted, then counts.
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
CRATES = {
    "bpfvm": "crates/bpfvm/src/lib.rs",
    "bpfvm_isa": "crates/isa/src/lib.rs",
    "bpfvm_obj": "crates/obj/src/lib.rs",
    "bpfvm_vm": "crates/vm/src/lib.rs",
    "bpfvm_maps": "crates/maps/src/lib.rs",
    "bpfvm_verifier": "crates/verifier/src/lib.rs",
}

KINDS = r"(fn|struct|enum|trait|const|static|type|union|mod|use|macro_rules!)"


CHAR_RE = re.compile(r"'(?:\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^'\\\n])'")
RAW_RE = re.compile(r'b?r(#*)"')


def clean(text):
    """Drop comments and blank string/char literals, so braces are code only."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            depth, j = 0, i
            while j < n:
                if text.startswith("/*", j):
                    depth += 1
                    j += 2
                elif text.startswith("*/", j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            i = j
            continue
        m = RAW_RE.match(text, i)
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + m.group(1)
            j = text.find(close, m.end())
            out.append('""')
            i = n if j < 0 else j + len(close)
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
            continue
        if c == "'":
            m = CHAR_RE.match(text, i)
            if m:
                out.append("' '")
                i = m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


class Module:
    def __init__(self, crate, file, text, dirpath, modpath):
        self.crate = crate
        self.file = file
        self.text = text
        self.dir = dirpath  # where child `mod x;` files live
        self.modpath = modpath  # list of names inside the crate


_cache = {}


def load_file_module(crate, file, modpath):
    key = (crate, tuple(modpath))
    if key in _cache:
        return _cache[key]
    text = clean(open(os.path.join(ROOT, file)).read())
    base = os.path.basename(file)
    if base in ("lib.rs", "mod.rs"):
        d = os.path.dirname(file)
    else:
        d = os.path.join(os.path.dirname(file), base[:-3])
    m = Module(crate, file, text, d, modpath)
    _cache[key] = m
    return m


def top_level(text):
    """Yield (attrs, decl, body) for every item at brace depth 0."""
    i = 0
    n = len(text)
    attrs = []
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        if text.startswith("#![", i) or text.startswith("#[", i):
            depth = 0
            j = i
            while j < n:
                if text[j] == "[":
                    depth += 1
                elif text[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if not text.startswith("#![", i):
                attrs.append(text[i:j + 1])
            i = j + 1
            continue
        # read a declaration up to `;` or a matching `{...}` at depth 0
        j = i
        paren = 0
        while j < n:
            c = text[j]
            if c in "([<" and not (c == "<" and text[j - 1] == "-"):
                paren += 1 if c != "<" else 0
            if c in ")]":
                paren -= 1
            if c == ";" and paren <= 0:
                yield attrs, text[i:j], None
                i = j + 1
                break
            if c == "{" and paren <= 0:
                depth = 0
                k = j
                while k < n:
                    if text[k] == "{":
                        depth += 1
                    elif text[k] == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    k += 1
                decl = text[i:j]
                body = text[j + 1:k]
                # a `{}` that is part of a `use` list or a struct literal in a const
                if re.match(r"\s*(pub\s+)?use\b", decl) or re.match(r"\s*(pub(\([^)]*\))?\s+)?(const|static)\s+(?!fn\b|unsafe\b)", decl):
                    # continue to the `;`
                    m = text.find(";", k)
                    if m < 0:
                        m = n
                    yield attrs, text[i:m], None
                    i = m + 1
                else:
                    # `struct X { .. }` / `fn` bodies / impl / mod
                    yield attrs, decl, body
                    i = k + 1
                    # tuple structs etc end with `;` after `)`; a `where` clause is part of decl
                break
            j += 1
        else:
            break
        attrs = []


def is_hidden(attrs):
    return any("doc(hidden)" in a.replace(" ", "") for a in attrs)


def cfg_test(attrs):
    return any(re.search(r"cfg\(\s*test\s*\)", a) for a in attrs)


def parse_use_tree(s):
    """`a::b::{c, d as e, f::*}` -> list of (path list, alias or None)."""
    s = s.strip()
    out = []

    def rec(prefix, s):
        s = s.strip()
        if not s:
            return
        m = re.match(r"^(.*?)::\{(.*)\}$", s, re.S)
        if m and "{" not in m.group(1):
            base = prefix + [p for p in m.group(1).split("::") if p]
            for part in split_top(m.group(2)):
                rec(base, part)
            return
        if s.startswith("{") and s.endswith("}"):
            for part in split_top(s[1:-1]):
                rec(prefix, part)
            return
        alias = None
        m = re.match(r"^(.*)\s+as\s+(\w+)$", s, re.S)
        if m:
            s, alias = m.group(1).strip(), m.group(2)
        out.append((prefix + [p.strip() for p in s.split("::") if p.strip()], alias))

    rec([], s)
    return out


def split_top(s):
    parts, depth, cur = [], 0, ""
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def child_module(mod, name, body=None):
    if body is not None:
        m = Module(mod.crate, mod.file, body, os.path.join(mod.dir, name), mod.modpath + [name])
        return m
    for cand in (os.path.join(mod.dir, name + ".rs"), os.path.join(mod.dir, name, "mod.rs")):
        if os.path.exists(os.path.join(ROOT, cand)):
            return load_file_module(mod.crate, cand, mod.modpath + [name])
    return None


_items = {}


def items_of(mod):
    """List of (vis, kind, rest, attrs, body) for a module's top level (all visibilities)."""
    key = (mod.crate, tuple(mod.modpath), mod.file)
    if key not in _items:
        _items[key] = _items_of(mod)
    return _items[key]


def _items_of(mod):
    res = []
    for attrs, decl, body in top_level(mod.text):
        if cfg_test(attrs):
            continue
        d = decl.strip()
        m = re.match(r"^(pub(?:\([^)]*\))?\s+)?(?:unsafe\s+|async\s+|const\s+(?=fn)|extern\s+\"[^\"]*\"\s+)*" + KINDS + r"\s*(.*)$", d, re.S)
        if not m:
            continue
        vis, kind, rest = m.group(1), m.group(2), m.group(3)
        res.append((vis.strip() if vis else None, kind, rest, attrs, body))
    return res


def resolve_module(crate_mod, path, cur):
    """Resolve a path of module names to a Module (or None)."""
    if not path:
        return cur
    head = path[0]
    if head == "crate":
        base = load_file_module(cur.crate, CRATES[cur.crate], [])
        return resolve_module(base, path[1:], base)
    if head == "self":
        return resolve_module(crate_mod, path[1:], cur)
    if head == "super":
        parent_path = cur.modpath[:-1]
        base = load_file_module(cur.crate, CRATES[cur.crate], [])
        m = base
        for p in parent_path:
            m = find_child(m, p)
        return resolve_module(crate_mod, path[1:], m)
    if head in CRATES and head not in [x[2].split()[0] if x[1] == "mod" else None for x in items_of(cur)]:
        base = load_file_module(head, CRATES[head], [])
        return resolve_module(base, path[1:], base)
    m = find_child(cur, head)
    if m is None:
        return None
    return resolve_module(crate_mod, path[1:], m)


def find_child(mod, name):
    for vis, kind, rest, attrs, body in items_of(mod):
        if kind == "mod" and re.match(r"^" + name + r"\b", rest):
            return child_module(mod, name, body)
        if kind == "use":
            for p, alias in parse_use_tree(rest):
                if (alias or p[-1]) == name and p[-1] != "*":
                    tgt = resolve_module(mod, p, mod)
                    if tgt is not None:
                        return tgt
    return None


def find_item(mod, name):
    """Find (kind, attrs, rest, body, module) of `name` defined or re-exported in mod."""
    for vis, kind, rest, attrs, body in items_of(mod):
        if kind in ("use", "mod"):
            continue
        if re.match(r"^" + re.escape(name) + r"\b", rest):
            return kind, attrs, rest, body, mod
    # items generated by a macro (`kernel_enum! { pub enum ProgType .. }`,
    # `pub enum Op { $( $v, )* }` inside macro_rules): found by their declaration
    m = re.search(r"\bpub\s+(enum|struct|const|static|fn|type|trait)\s+" + re.escape(name) + r"\b", mod.text)
    if m:
        return m.group(1), [], name, None, mod
    for vis, kind, rest, attrs, body in items_of(mod):
        if kind == "use":
            for p, alias in parse_use_tree(rest):
                if p[-1] == "*":
                    src = resolve_module(mod, p[:-1], mod)
                    if src:
                        r = find_item(src, name)
                        if r:
                            return r
                elif (alias or p[-1]) == name:
                    src = resolve_module(mod, p[:-1], mod)
                    if src:
                        r = find_item(src, p[-1])
                        if r:
                            return r
    return None


OUT = []
SEEN_MODS = set()


def emit(kind, path, hidden):
    OUT.append((path, kind, hidden))


def fields(kind, rest, body):
    if kind != "struct" or body is None:
        return []
    fs = []
    for part in split_top(body):
        part = re.sub(r"#\[[^\]]*\]", "", part).strip()
        m = re.match(r"^pub\s+(\w+)\s*:", part)
        if m:
            fs.append(m.group(1))
    return fs


def macro_items(mod):
    """Items a module declares through macros: `kernel_enum! { pub enum X {..} }`
    (the item is in the invocation) and `handle!(Xdp, ..)` where the macro_rules
    body declares `pub struct $name`: yields (kind, name, attrs, rest, body)."""
    gens = {}
    for m in re.finditer(r"macro_rules!\s*(\w+)", mod.text):
        gens.setdefault(m.group(1), [])
    for attrs, decl, body in top_level(mod.text):
        d = decl.strip()
        m = re.match(r"^macro_rules!\s*(\w+)", d)
        if m and body is not None:
            gens[m.group(1)] = re.findall(r"\bpub\s+(struct|enum|trait|fn|const|type)\s+\$\w+", body)
            continue
        m = re.match(r"^(\w+)!\s*(.*)$", d, re.S)
        if not m or m.group(1) == "macro_rules":
            continue
        arg = body if body is not None else m.group(2)
        inner = Module(mod.crate, mod.file, arg, mod.dir, mod.modpath + ["<macro>"])
        for vis, kind, rest, a2, b2 in _items_of(inner):
            if vis == "pub" and kind not in ("use", "mod"):
                yield kind, re.match(r"^(\w+)", rest).group(1), a2, rest, b2
        for kind in gens.get(m.group(1), []):
            a = re.sub(r"#\[[^\]]*\]", "", arg.strip().lstrip("(").lstrip("{"))
            n = re.match(r"\s*(\w+)", a)
            if n:
                yield kind, n.group(1), [], n.group(1), None


def walk(mod, path, hidden):
    key = (mod.crate, tuple(mod.modpath), tuple(path))
    if key in SEEN_MODS:
        return
    SEEN_MODS.add(key)
    for kind, name, attrs, rest, body in macro_items(mod):
        h = hidden or is_hidden(attrs)
        emit(kind, "::".join(path + [name]), h)
        for f in fields(kind, rest, body):
            emit("field", "::".join(path + [name]) + "." + f, h)
    for vis, kind, rest, attrs, body in items_of(mod):
        if vis != "pub":
            continue
        h = hidden or is_hidden(attrs)
        if kind == "use":
            for p, alias in parse_use_tree(rest):
                if p[-1] == "*":
                    src = resolve_module(mod, p[:-1], mod)
                    if src is None:
                        emit("glob?", "::".join(path + ["*"]), h)
                        continue
                    walk(src, path, h)
                    continue
                name = alias or p[-1]
                src = resolve_module(mod, p[:-1], mod)
                sub = resolve_module(mod, p, mod) if src is not None else None
                r = find_item(src, p[-1]) if src is not None else None
                if r is None and sub is not None:
                    emit("mod", "::".join(path + [name]), h)
                    walk(sub, path + [name], h)
                    continue
                if r is None:
                    emit("use?", "::".join(path + [name]), h)
                    continue
                k, a2, rest2, body2, _ = r
                emit(k, "::".join(path + [name]), h or is_hidden(a2))
                for f in fields(k, rest2, body2):
                    emit("field", "::".join(path + [name]) + "." + f, h or is_hidden(a2))
            continue
        name = re.match(r"^(\w+)", rest).group(1)
        if kind == "mod":
            sub = child_module(mod, name, body)
            emit("mod", "::".join(path + [name]), h)
            if sub:
                walk(sub, path + [name], h)
            continue
        emit(kind.rstrip("!"), "::".join(path + [name]), h)
        for f in fields(kind, rest, body):
            emit("field", "::".join(path + [name]) + "." + f, h)


root = load_file_module("bpfvm", CRATES["bpfvm"], [])
walk(root, ["bpfvm"], False)
seen = {}
for path, kind, hidden in OUT:
    if path in seen:
        seen[path] = (kind, seen[path][1] and hidden)
    else:
        seen[path] = (kind, hidden)
lines = sorted(seen.items())
for path, (kind, hidden) in lines:
    print(f"{kind:7} {path}{'  [hidden]' if hidden else ''}")
total = len(lines)
hid = sum(1 for _, (k, h) in lines if h)
flds = sum(1 for _, (k, h) in lines if k == "field")
print(f"# total {total} (items {total - flds}, public fields {flds}); doc-hidden {hid}; visible {total - hid}")
