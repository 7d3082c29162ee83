//! llvm-objdump-syntax disassembler (placeholder, being written).
