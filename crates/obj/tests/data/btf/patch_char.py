#!/usr/bin/env python3
"""Writes values_char.o: values.o with the BTF INT 'char' re-encoded as
BTF_INT_CHAR (clang always emits SIGNED), to see how bpftool prints CHAR."""
import struct

data = bytearray(open("values.o", "rb").read())
shoff = struct.unpack_from("<Q", data, 0x28)[0]
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)


def shdr(i):
    name, _type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
    return name, off, size


_, stroff, _ = shdr(shstrndx)
for i in range(shnum):
    name, off, size = shdr(i)
    end = data.index(0, stroff + name)
    if data[stroff + name:end] == b".BTF":
        btf_off = off
        break
else:
    raise SystemExit("no .BTF")

hdr_len, type_off, type_len, str_off, _ = struct.unpack_from("<IIIII", data, btf_off + 4)
types = btf_off + hdr_len + type_off
strs = btf_off + hdr_len + str_off
extra = {1: 4, 3: 12, 14: 4, 17: 4}
per_vlen = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
pos = types
while pos < types + type_len:
    name_off, info, _ = struct.unpack_from("<III", data, pos)
    kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
    name = data[strs + name_off:data.index(0, strs + name_off)]
    if kind == 1 and name == b"char":
        enc = struct.unpack_from("<I", data, pos + 12)[0]
        struct.pack_into("<I", data, pos + 12, (enc & 0x00FFFFFF) | (2 << 24))
    pos += 12 + extra.get(kind, 0) + per_vlen.get(kind, 0) * vlen
open("values_char.o", "wb").write(data)
