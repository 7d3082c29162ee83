//! Kernel-syntax disassembler (placeholder, being written).
