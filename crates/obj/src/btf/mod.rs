//! BTF and BTF.ext (in progress)
