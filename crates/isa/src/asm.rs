//! Assembler for the bpf_conformance syntax (placeholder, being written).
