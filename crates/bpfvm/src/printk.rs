//! `bpf_trace_printk`, `bpf_trace_vprintk` and `bpf_snprintf`: the kernel's
//! restricted printf, and the trace_pipe line the message ends up on.
//!
//! Data flow, as in the kernel (`bpf_bprintf_prepare` then `bstr_printf`):
//! `prepare` walks the format once, checks every conversion against the short
//! list BPF allows, and resolves each argument — strings and IP addresses are read
//! out of program memory at this point through the caller's `read_mem` — while
//! accounting for the kernel's 512-byte argument buffer. Only when the whole format
//! is valid does rendering run, so an invalid format prints nothing and the helper
//! returns `-EINVAL`. Rendering follows the kernel's vsprintf rules for flags and
//! widths, and counts the full length while keeping only what fits.
//!
//! Behaviour observed on Linux 6.18 and reproduced here (captured cases live in
//! `tests/data/printk/`):
//! - conversions: `%d %i %u %x %X` with `l`/`ll`, `%c`, `%s`, `%%`, `%p %pK %px
//!   %ps %pS %pB %pks %pus %pI4 %pi4 %pI6 %pi6`; flags `0 + - space` and a width;
//!   no precision, no `#`, no `*`, no `h`/`z`/`L`;
//! - a format byte that is an ASCII control character (other than whitespace) is
//!   refused; bytes 0x80–0xff are accepted (UTF-8 text passes through);
//! - strings live in a 512-byte buffer shared by all arguments: a longer `%s` is
//!   cut, and a conversion that finds the buffer full fails with `-ENOSPC`;
//! - a `%s` or `%pI4` whose memory cannot be read prints as empty / all zeros;
//! - after any `%p` conversion the kernel skips the letters and digits that follow
//!   (`%pI6c` prints the full form, `%pKfoo` prints just the pointer);
//! - width applies to numbers, `%c`, `%s`, `%p`, `%px`, `%pK`, `%ps`, `%pS`, but
//!   not to the pre-formatted `%pI4`/`%pI6`/`%pB`/`%pks`/`%pus`.
//!
//! Where userspace cannot be the kernel: `%p`/`%pK` print a hashed pointer (as with
//! `kptr_restrict=0`), but with a fixed hash, not the kernel's per-boot key;
//! `%ps`/`%pS`/`%pB` have no kernel symbols and print `0x<hex>` as the kernel does
//! for an address it cannot resolve; `%pus` reads user memory, which a bpfvm
//! program does not have, so it prints an empty string (as the kernel does for a
//! kernel pointer).

use crate::helpers_pure::{ipv4_fmt, ipv6_fmt};
use thiserror::Error;

/// Arguments `bpf_trace_printk` takes after the format.
pub const MAX_TRACE_PRINTK_VARARGS: usize = 3;
/// Arguments `bpf_snprintf` / `bpf_trace_vprintk` accept (`data_len` up to 96 bytes).
pub const MAX_BPRINTF_VARARGS: usize = 12;
/// Size of the buffer a trace message is printed into (the message keeps 1023 bytes).
pub const MAX_BPRINTF_BUF: usize = 1024;
/// Size of the buffer the arguments (strings included) are staged in.
pub const MAX_BPRINTF_BIN_ARGS: usize = 512;
/// vsprintf's largest field width; wider ones are clamped.
const FIELD_WIDTH_MAX: usize = (1 << 23) - 1;

const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;

/// Why the kernel refuses a format; [`PrintkError::errno`] is what the helper
/// returns (negated).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PrintkError {
    #[error("format string has no NUL terminator within its {size} bytes")]
    Unterminated { size: usize },
    #[error("format byte {byte:#04x} at offset {offset} is a control character")]
    ControlChar { offset: usize, byte: u8 },
    #[error(
        "format has more conversions than the {num_args} arguments given (at offset {offset})"
    )]
    TooManyConversions { offset: usize, num_args: usize },
    #[error("unsupported conversion at offset {offset}")]
    BadConversion { offset: usize },
    #[error("argument data length {data_len} is not a multiple of 8 or exceeds {max} arguments")]
    BadDataLen { data_len: usize, max: usize },
    #[error(
        "arguments overflow the {MAX_BPRINTF_BIN_ARGS}-byte argument buffer at offset {offset}"
    )]
    NoSpace { offset: usize },
}

impl PrintkError {
    /// The positive errno: `EINVAL` for a bad format or argument count, `ENOSPC`
    /// when the arguments do not fit the staging buffer.
    pub fn errno(&self) -> i32 {
        match self {
            PrintkError::NoSpace { .. } => ENOSPC,
            _ => EINVAL,
        }
    }
}

/// What `bpf_trace_printk` / `bpf_trace_vprintk` produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePrintk {
    /// The message the trace event records: at most 1023 bytes, cut at the first
    /// NUL (a `%c` of 0 ends it). trace_pipe prints it followed by a newline.
    pub msg: Vec<u8>,
    /// The helper's return value: the length of the full formatted text, as if
    /// nothing had been cut (NULs from `%c` included).
    pub ret: i64,
}

impl TracePrintk {
    /// The message as text (invalid UTF-8 replaced), for display.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.msg).into_owned()
    }
}

/// What `bpf_snprintf` produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snprintf {
    /// The bytes the helper writes at `str`: at most `str_size` bytes, NUL-terminated
    /// when `str_size > 0`, nothing when it is 0. Bytes after them are untouched.
    pub out: Vec<u8>,
    /// The helper's return value: the size the full output needs, NUL included.
    pub ret: i64,
}

/// Reads program memory for `%s`, `%pks` and `%pI4`/`%pI6`: `read_mem(addr, len)`
/// returns the readable prefix of `[addr, addr + len)` (shorter when the memory ends
/// there, `None` or empty when `addr` itself cannot be read).
pub type ReadMem<'a> = dyn FnMut(u64, usize) -> Option<Vec<u8>> + 'a;

/// `bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3)` (helper 6). `fmt` is the
/// `fmt_size` bytes the program passed.
#[doc(alias = "bpf_trace_printk")]
pub fn format_trace_printk(
    fmt: &[u8],
    args: [u64; MAX_TRACE_PRINTK_VARARGS],
    read_mem: &mut ReadMem<'_>,
) -> Result<TracePrintk, PrintkError> {
    trace_message(fmt, &args, read_mem)
}

/// `bpf_trace_vprintk(fmt, fmt_size, data, data_len)` (helper 177): as
/// [`format_trace_printk`] with up to 12 arguments. Check `data_len` first with
/// [`check_data_len`].
#[doc(alias = "bpf_trace_vprintk")]
pub fn format_trace_vprintk(
    fmt: &[u8],
    args: &[u64],
    read_mem: &mut ReadMem<'_>,
) -> Result<TracePrintk, PrintkError> {
    if args.len() > MAX_BPRINTF_VARARGS {
        return Err(PrintkError::BadDataLen {
            data_len: args.len() * 8,
            max: MAX_BPRINTF_VARARGS,
        });
    }
    trace_message(fmt, args, read_mem)
}

/// `bpf_snprintf(str, str_size, fmt, data, data_len)` (helper 165). `fmt` holds the
/// format up to and including its NUL (the verifier guarantees one).
#[doc(alias = "bpf_snprintf")]
pub fn format_bpf_snprintf(
    fmt: &[u8],
    args: &[u64],
    str_size: u32,
    read_mem: &mut ReadMem<'_>,
) -> Result<Snprintf, PrintkError> {
    if args.len() > MAX_BPRINTF_VARARGS {
        return Err(PrintkError::BadDataLen {
            data_len: args.len() * 8,
            max: MAX_BPRINTF_VARARGS,
        });
    }
    let pieces = prepare(fmt, args, read_mem)?;
    let cap = (str_size as usize).saturating_sub(1);
    let mut sink = Sink::new(cap);
    render(fmt, &pieces, &mut sink);
    let mut out = sink.buf;
    if str_size > 0 {
        out.push(0);
    }
    Ok(Snprintf {
        out,
        ret: sink.len as i64 + 1,
    })
}

/// The `data_len` check of `bpf_snprintf` and `bpf_trace_vprintk`: a multiple of 8,
/// at most 12 arguments. Returns the number of arguments.
pub fn check_data_len(data_len: u32) -> Result<usize, PrintkError> {
    let n = data_len as usize;
    if n & 7 != 0 || n > MAX_BPRINTF_VARARGS * 8 {
        return Err(PrintkError::BadDataLen {
            data_len: n,
            max: MAX_BPRINTF_VARARGS,
        });
    }
    Ok(n / 8)
}

fn trace_message(
    fmt: &[u8],
    args: &[u64],
    read_mem: &mut ReadMem<'_>,
) -> Result<TracePrintk, PrintkError> {
    with_trace_message(fmt, args, read_mem, |msg, ret| TracePrintk {
        msg: msg.to_vec(),
        ret,
    })
}

thread_local! {
    /// The buffer messages are rendered into, reused from call to call.
    static MSG: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`format_trace_printk`] without allocating: `f` gets the message (as the
/// trace event records it) and the helper's return value.
pub fn with_trace_printk<T>(
    fmt: &[u8],
    args: [u64; MAX_TRACE_PRINTK_VARARGS],
    read_mem: &mut ReadMem<'_>,
    f: impl FnOnce(&[u8], i64) -> T,
) -> Result<T, PrintkError> {
    with_trace_message(fmt, &args, read_mem, f)
}

fn with_trace_message<T>(
    fmt: &[u8],
    args: &[u64],
    read_mem: &mut ReadMem<'_>,
    f: impl FnOnce(&[u8], i64) -> T,
) -> Result<T, PrintkError> {
    MSG.with(|m| {
        let mut spare = m.try_borrow_mut().ok();
        let buf = spare.as_deref_mut().map(std::mem::take).unwrap_or_default();
        let mut sink = Sink::with_buf(buf, MAX_BPRINTF_BUF - 1);
        let r = with_prepared(fmt, args, read_mem, |pieces| render(fmt, pieces, &mut sink));
        let out = r.map(|()| {
            let msg = &sink.buf[..];
            // The trace event copies the message as a C string.
            let msg = &msg[..msg.iter().position(|b| *b == 0).unwrap_or(msg.len())];
            f(msg, sink.len as i64)
        });
        if let Some(s) = spare.as_deref_mut() {
            *s = sink.buf;
        }
        out
    })
}

// ---------------------------------------------------------------------------
// The format walk (bpf_bprintf_prepare)

/// Flags and width of one conversion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Bytes `start..end` of the format (no allocation per literal).
    Lit(usize, usize),
    /// An integer; `bits` is 32 or 64, `signed` for %d/%i.
    Int {
        spec: Spec,
        value: u64,
        bits: u32,
        signed: bool,
        base: u32,
        upper: bool,
    },
    Char {
        spec: Spec,
        c: u8,
    },
    Str {
        spec: Spec,
        bytes: Vec<u8>,
    },
    /// Text formatted while preparing (`%pI4`, `%pB`, `%pks`): copied as is.
    Pre(Vec<u8>),
    /// `%p`/`%pK` (hashed) and `%px` (raw).
    Ptr {
        spec: Spec,
        value: u64,
        hashed: bool,
    },
    /// `%ps`/`%pS`: a symbol, or `0x<hex>` when there is none.
    Sym {
        spec: Spec,
        value: u64,
    },
}

/// The kernel's ctype over all 256 byte values (Latin-1 above 0x7f).
fn k_isalnum(c: u8) -> bool {
    c.is_ascii_alphanumeric() || (c >= 0xc0 && c != 0xd7 && c != 0xf7)
}
fn k_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}
fn k_ispunct(c: u8) -> bool {
    c.is_ascii_punctuation() || (0xa1..=0xbf).contains(&c) || c == 0xd7 || c == 0xf7
}
fn k_isprint(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || c >= 0xa0
}

/// The staging buffer's fill level; may run past the end after a pre-formatted
/// argument that did not fit (the kernel advances by the untruncated length).
struct BinArgs {
    off: usize,
}

impl BinArgs {
    fn avail(&self) -> usize {
        MAX_BPRINTF_BIN_ARGS.saturating_sub(self.off)
    }
    /// A fixed-size argument: aligned to 4 bytes, `size` bytes.
    fn fixed(&mut self, size: usize, at: usize) -> Result<(), PrintkError> {
        self.off = (self.off + 3) & !3;
        if self.off > MAX_BPRINTF_BIN_ARGS || self.avail() < size {
            return Err(PrintkError::NoSpace { offset: at });
        }
        self.off += size;
        Ok(())
    }
    /// A string argument needs at least one free byte. (Past the end, after a
    /// pre-formatted argument overshot it, the kernel would copy out of bounds;
    /// bpfvm refuses with `ENOSPC` instead.)
    fn need_byte(&self, at: usize) -> Result<(), PrintkError> {
        if self.avail() == 0 {
            return Err(PrintkError::NoSpace { offset: at });
        }
        Ok(())
    }
}

/// Reads a NUL-terminated string the way `strncpy_from_kernel_nofault` does into
/// `bufsz` bytes: cut to `bufsz - 1` bytes when longer, empty on a fault. Returns
/// the string (without NUL) and the bytes it took in the staging buffer.
fn copy_string(read_mem: &mut ReadMem<'_>, addr: u64, bufsz: usize) -> (Vec<u8>, usize) {
    let data = read_mem(addr, bufsz).unwrap_or_default();
    let data = &data[..data.len().min(bufsz)];
    match data.iter().position(|b| *b == 0) {
        Some(n) => (data[..n].to_vec(), n + 1),
        None if data.len() == bufsz => (data[..bufsz - 1].to_vec(), bufsz),
        // The memory ended before a NUL: the kernel reports -EFAULT and prints "".
        None => (Vec::new(), 1),
    }
}

fn read_exact(read_mem: &mut ReadMem<'_>, addr: u64, len: usize) -> Option<Vec<u8>> {
    read_mem(addr, len).filter(|d| d.len() >= len).map(|mut d| {
        d.truncate(len);
        d
    })
}

/// Walks the format like `bpf_bprintf_prepare`: validates it and resolves the
/// arguments into pieces ready to render.
/// [`prepare_into`] into a fresh vector.
fn prepare(
    fmt: &[u8],
    args: &[u64],
    read_mem: &mut ReadMem<'_>,
) -> Result<Vec<Piece>, PrintkError> {
    let mut pieces = Vec::with_capacity(8);
    prepare_into(fmt, args, read_mem, &mut pieces)?;
    Ok(pieces)
}

/// The last format prepared on this thread, when its pieces depend on the
/// arguments only by value (no `%s`, `%pks`, `%pI4`, ... reading memory): a
/// program printing from a loop or per packet passes the same format every
/// time, and the walk that validates it costs more than rendering.
#[derive(Default)]
struct Prepared {
    /// The format through its NUL (empty: nothing cached).
    fmt: Vec<u8>,
    /// The argument count it was prepared for (it bounds the conversions).
    nargs: usize,
    /// Its pieces; each conversion takes the next argument, in order.
    pieces: Vec<Piece>,
}

thread_local! {
    static PREPARED: std::cell::RefCell<Prepared> = const {
        std::cell::RefCell::new(Prepared { fmt: Vec::new(), nargs: 0, pieces: Vec::new() })
    };
}

/// Whether a piece's content is fixed by the format and its argument's value.
fn by_value(p: &Piece) -> bool {
    matches!(
        p,
        Piece::Lit(..)
            | Piece::Int { .. }
            | Piece::Char { .. }
            | Piece::Ptr { .. }
            | Piece::Sym { .. }
    )
}

/// Puts `args` into cached pieces, in the order [`prepare_into`] took them.
fn refill(pieces: &mut [Piece], args: &[u64]) {
    let mut k = 0;
    for p in pieces {
        let v = match p {
            Piece::Int { value, .. } | Piece::Ptr { value, .. } | Piece::Sym { value, .. } => value,
            Piece::Char { c, .. } => {
                *c = args.get(k).copied().unwrap_or(0) as u8;
                k += 1;
                continue;
            }
            _ => continue,
        };
        *v = args.get(k).copied().unwrap_or(0);
        k += 1;
    }
}

/// Runs `f` on the pieces of `fmt` with `args`: [`prepare_into`], or the
/// thread's cached pieces of the same format with the new values.
fn with_prepared<T>(
    fmt: &[u8],
    args: &[u64],
    read_mem: &mut ReadMem<'_>,
    f: impl FnOnce(&[Piece]) -> T,
) -> Result<T, PrintkError> {
    PREPARED.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            let mut pieces = Vec::new();
            prepare_into(fmt, args, read_mem, &mut pieces)?;
            return Ok(f(&pieces));
        };
        let c = &mut *c;
        let n = c.fmt.len();
        if n > 0 && c.nargs == args.len() && fmt.get(..n) == Some(&c.fmt[..]) {
            refill(&mut c.pieces, args);
            return Ok(f(&c.pieces));
        }
        c.fmt.clear();
        c.pieces.clear();
        prepare_into(fmt, args, read_mem, &mut c.pieces)?;
        if c.pieces.iter().all(by_value) {
            // prepare_into succeeded, so the format has its NUL.
            if let Some(end) = fmt.iter().position(|b| *b == 0) {
                c.fmt.extend_from_slice(&fmt[..=end]);
                c.nargs = args.len();
            }
        }
        Ok(f(&c.pieces))
    })
}

fn prepare_into(
    fmt: &[u8],
    args: &[u64],
    read_mem: &mut ReadMem<'_>,
    pieces: &mut Vec<Piece>,
) -> Result<(), PrintkError> {
    let end = fmt
        .iter()
        .position(|b| *b == 0)
        .ok_or(PrintkError::Unterminated { size: fmt.len() })?;
    let f = &fmt[..end];
    // Past the end the format reads as NUL, as the kernel's terminated string does.
    let at = |i: usize| -> u8 { f.get(i).copied().unwrap_or(0) };

    // The literal run being collected: f[lit.0..lit.1] (a `%%` ends one run
    // and starts the next at its second `%`).
    let mut lit = (0usize, 0usize);
    let mut bin = BinArgs { off: 0 };
    let mut num_spec = 0usize;
    let mut skip_alnum = false;
    let mut i = 0usize;

    while i < f.len() {
        let c = f[i];
        if c.is_ascii() && !k_isprint(c) && !k_isspace(c) {
            return Err(PrintkError::ControlChar { offset: i, byte: c });
        }
        if skip_alnum {
            // vsprintf swallows what follows a %p conversion while it is alphanumeric.
            if k_isalnum(c) {
                i += 1;
                continue;
            }
            skip_alnum = false;
        }
        if c != b'%' {
            if lit.0 == lit.1 {
                lit = (i, i);
            }
            lit.1 = i + 1;
            i += 1;
            continue;
        }
        if at(i + 1) == b'%' {
            if lit.0 != lit.1 {
                pieces.push(Piece::Lit(lit.0, lit.1));
            }
            lit = (i + 1, i + 2);
            i += 2;
            continue;
        }
        let start = i;
        if num_spec >= args.len() {
            return Err(PrintkError::TooManyConversions {
                offset: start,
                num_args: args.len(),
            });
        }
        let arg = args[num_spec];
        i += 1;

        let mut spec = Spec::default();
        loop {
            match at(i) {
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b'-' => spec.left = true,
                b' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        if (b'1'..=b'9').contains(&at(i)) {
            let mut w = 0usize;
            while at(i).is_ascii_digit() {
                w = w.saturating_mul(10).saturating_add((at(i) - b'0') as usize);
                i += 1;
            }
            spec.width = Some(w.min(FIELD_WIDTH_MAX));
        }

        if lit.0 != lit.1 {
            pieces.push(Piece::Lit(lit.0, lit.1));
            lit = (0, 0);
        }

        let next = at(i + 1);
        match at(i) {
            b'p' => {
                if next == 0 || k_isspace(next) || k_ispunct(next) {
                    bin.fixed(8, start)?;
                    pieces.push(Piece::Ptr {
                        spec,
                        value: arg,
                        hashed: true,
                    });
                    i += 1;
                } else if (next == b'k' || next == b'u') && at(i + 2) == b's' {
                    let after = at(i + 3);
                    if after != 0 && !k_isspace(after) && !k_ispunct(after) {
                        return Err(PrintkError::BadConversion { offset: start });
                    }
                    bin.need_byte(start)?;
                    let (s, used) = if next == b'k' {
                        copy_string(read_mem, arg, bin.avail())
                    } else {
                        // No user address space in bpfvm: as the kernel with a kernel pointer.
                        (Vec::new(), 1)
                    };
                    bin.off += used;
                    pieces.push(Piece::Pre(s));
                    i += 3;
                } else if matches!(next, b'K' | b'x' | b's' | b'S') {
                    bin.fixed(8, start)?;
                    pieces.push(match next {
                        b'K' => Piece::Ptr {
                            spec,
                            value: arg,
                            hashed: true,
                        },
                        b'x' => Piece::Ptr {
                            spec,
                            value: arg,
                            hashed: false,
                        },
                        _ => Piece::Sym { spec, value: arg },
                    });
                    i += 2;
                } else if next == b'B' {
                    let mut text = format!("0x{arg:x}").into_bytes();
                    let room = bin.avail().saturating_sub(1);
                    bin.off += text.len() + 1;
                    text.truncate(room);
                    pieces.push(Piece::Pre(text));
                    i += 2;
                } else if matches!(next, b'i' | b'I') && matches!(at(i + 2), b'4' | b'6') {
                    let v6 = at(i + 2) == b'6';
                    let size = if v6 { 16 } else { 4 };
                    if bin.avail() < size {
                        return Err(PrintkError::NoSpace { offset: start });
                    }
                    // A fault prints the all-zero address.
                    let raw = read_exact(read_mem, arg, size).unwrap_or_else(|| vec![0; size]);
                    let text = if v6 {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&raw);
                        ipv6_fmt(&a, next == b'I')
                    } else {
                        ipv4_fmt(&[raw[0], raw[1], raw[2], raw[3]], next == b'i')
                    };
                    let mut text = text.into_bytes();
                    // snprintf into the rest of the buffer cuts the text, but the
                    // kernel advances by its full length.
                    let room = bin.avail().saturating_sub(1);
                    bin.off += text.len() + 1;
                    text.truncate(room);
                    pieces.push(Piece::Pre(text));
                    i += 3;
                } else {
                    return Err(PrintkError::BadConversion { offset: start });
                }
                skip_alnum = true;
                num_spec += 1;
                continue;
            }
            b's' => {
                if next != 0 && !k_isspace(next) && !k_ispunct(next) {
                    return Err(PrintkError::BadConversion { offset: start });
                }
                bin.need_byte(start)?;
                let (s, used) = copy_string(read_mem, arg, bin.avail());
                bin.off += used;
                pieces.push(Piece::Str { spec, bytes: s });
                i += 1;
                num_spec += 1;
                continue;
            }
            b'c' => {
                bin.need_byte(start)?;
                bin.off += 1;
                pieces.push(Piece::Char { spec, c: arg as u8 });
                i += 1;
                num_spec += 1;
                continue;
            }
            _ => {}
        }

        let mut bits = 32;
        if at(i) == b'l' {
            bits = 64;
            i += 1;
        }
        if at(i) == b'l' {
            i += 1;
        }
        let (signed, base, upper) = match at(i) {
            b'd' | b'i' => (true, 10, false),
            b'u' => (false, 10, false),
            b'x' => (false, 16, false),
            b'X' => (false, 16, true),
            _ => return Err(PrintkError::BadConversion { offset: start }),
        };
        bin.fixed(bits as usize / 8, start)?;
        pieces.push(Piece::Int {
            spec,
            value: arg,
            bits,
            signed,
            base,
            upper,
        });
        i += 1;
        num_spec += 1;
    }
    if lit.0 != lit.1 {
        pieces.push(Piece::Lit(lit.0, lit.1));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Rendering (bstr_printf)

/// Output that counts everything but keeps only `cap` bytes, so that huge widths
/// cost no memory.
struct Sink {
    buf: Vec<u8>,
    cap: usize,
    len: usize,
}

impl Sink {
    /// A sink writing into `buf` (emptied first).
    fn with_buf(mut buf: Vec<u8>, cap: usize) -> Self {
        buf.clear();
        Sink { buf, cap, len: 0 }
    }

    fn new(cap: usize) -> Self {
        Sink {
            buf: Vec::with_capacity(cap.min(256)),
            cap,
            len: 0,
        }
    }
    fn push(&mut self, b: u8) {
        if self.buf.len() < self.cap {
            self.buf.push(b);
        }
        self.len += 1;
    }
    fn extend(&mut self, bytes: &[u8]) {
        let room = self.cap - self.buf.len();
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.len += bytes.len();
    }
    fn repeat(&mut self, b: u8, n: usize) {
        let room = self.cap - self.buf.len();
        self.buf.resize(self.buf.len() + n.min(room), b);
        self.len += n;
    }
}

fn render(fmt: &[u8], pieces: &[Piece], out: &mut Sink) {
    for p in pieces {
        match p {
            Piece::Lit(a, b) => out.extend(&fmt[*a..*b]),
            Piece::Pre(b) => out.extend(b),
            Piece::Int {
                spec,
                value,
                bits,
                signed,
                base,
                upper,
            } => {
                let v = if *bits == 32 {
                    *value & 0xffff_ffff
                } else {
                    *value
                };
                let neg = *signed
                    && if *bits == 32 {
                        (v as u32 as i32) < 0
                    } else {
                        (v as i64) < 0
                    };
                let mag = if !neg {
                    v
                } else if *bits == 32 {
                    (v as u32 as i32).unsigned_abs() as u64
                } else {
                    (v as i64).unsigned_abs()
                };
                number(out, mag, neg, *signed, *spec, *base, *upper);
            }
            Piece::Char { spec, c } => padded(out, &[*c], *spec),
            Piece::Str { spec, bytes } => padded(out, bytes, *spec),
            Piece::Ptr {
                spec,
                value,
                hashed,
            } => {
                let v = if *hashed && !is_err_or_null(*value) {
                    hash_pointer(*value) as u64
                } else {
                    *value
                };
                let mut s = *spec;
                if s.width.is_none() {
                    s.width = Some(16);
                    s.zero = true;
                }
                number(out, v, false, false, s, 16, false);
            }
            Piece::Sym { spec, value } => padded(out, format!("0x{value:x}").as_bytes(), *spec),
        }
    }
}

/// The kernel's `number()`: sign, zero or space padding to the width, digits.
fn number(out: &mut Sink, mag: u64, neg: bool, signed: bool, spec: Spec, base: u32, upper: bool) {
    let sign = if !signed {
        None
    } else if neg {
        Some(b'-')
    } else if spec.plus {
        Some(b'+')
    } else if spec.space {
        Some(b' ')
    } else {
        None
    };
    // Digits at the end of a stack buffer (no allocation).
    let mut buf = [0u8; 22];
    let mut i = buf.len();
    let mut v = mag;
    let set: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // Constant bases, so the compiler divides by multiplying.
    if base == 16 {
        loop {
            i -= 1;
            buf[i] = set[(v & 15) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
    } else {
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
    }
    let digits = &buf[i..];
    let len = digits.len() + sign.is_some() as usize;
    let pad = spec.width.unwrap_or(0).saturating_sub(len);
    let zero = spec.zero && !spec.left;
    if !spec.left && !zero {
        out.repeat(b' ', pad);
    }
    if let Some(s) = sign {
        out.push(s);
    }
    if zero {
        out.repeat(b'0', pad);
    }
    out.extend(digits);
    if spec.left {
        out.repeat(b' ', pad);
    }
}

/// Strings and characters: padded with spaces (the `0` flag does not apply).
fn padded(out: &mut Sink, bytes: &[u8], spec: Spec) {
    let pad = spec.width.unwrap_or(0).saturating_sub(bytes.len());
    if !spec.left {
        out.repeat(b' ', pad);
    }
    out.extend(bytes);
    if spec.left {
        out.repeat(b' ', pad);
    }
}

/// NULL and error pointers (-4095..-1) are printed as they are, never hashed.
fn is_err_or_null(p: u64) -> bool {
    p == 0 || p >= (-4095i64) as u64
}

/// The stand-in for the kernel's pointer hashing (`ptr_to_id`): the kernel keys a
/// siphash with a random per-boot key and prints the low 32 bits; bpfvm uses a fixed
/// mix so that output is reproducible.
pub fn hash_pointer(ptr: u64) -> u32 {
    let mut z = ptr.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

// ---------------------------------------------------------------------------
// trace_pipe lines

/// The context flags column of a trace line (`irqs-off/BH-disabled`,
/// `need-resched`, `hardirq/softirq`, `preempt-depth`, `migrate-disable`), e.g.
/// `b..11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceFlags {
    pub irqs_off: bool,
    pub bh_off: bool,
    /// `.` or the kernel's letter (`N`, `n`, `p`, `L`, `l`, `B`, `b`).
    pub need_resched: char,
    pub hardirq: bool,
    pub softirq: bool,
    pub nmi: bool,
    pub preempt_depth: u8,
    pub migrate_disable: u8,
}

impl TraceFlags {
    /// What Linux 6.18 shows for a program run by `BPF_PROG_TEST_RUN`
    /// (`bpftool prog run`): bottom halves off, preempt depth 1, migration off.
    pub const PROG_TEST_RUN: TraceFlags = TraceFlags {
        irqs_off: false,
        bh_off: true,
        need_resched: '.',
        hardirq: false,
        softirq: false,
        nmi: false,
        preempt_depth: 1,
        migrate_disable: 1,
    };

    /// What Linux 6.18 shows for an XDP program attached to a device, run in the
    /// receive softirq: `..s2.` (seen on a veth pair; `..s1.` when `ksoftirqd` runs
    /// the softirq instead).
    pub const XDP_SOFTIRQ: TraceFlags = TraceFlags {
        irqs_off: false,
        bh_off: false,
        need_resched: '.',
        hardirq: false,
        softirq: true,
        nmi: false,
        preempt_depth: 2,
        migrate_disable: 0,
    };

    /// The five characters, as `trace_print_lat_fmt` lays them out.
    pub fn render(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// [`Self::render`] as bytes, without allocating.
    pub fn bytes(&self) -> [u8; 5] {
        let irq = match (self.irqs_off, self.bh_off) {
            (true, true) => 'D',
            (true, false) => 'd',
            (false, true) => 'b',
            (false, false) => '.',
        };
        let hs = match (self.nmi, self.hardirq, self.softirq) {
            (true, true, _) => 'Z',
            (true, false, _) => 'z',
            (false, true, true) => 'H',
            (false, true, false) => 'h',
            (false, false, true) => 's',
            (false, false, false) => '.',
        };
        let nib = |v: u8| {
            if v & 0xf == 0 {
                b'.'
            } else {
                b"0123456789abcdef"[(v & 0xf) as usize]
            }
        };
        let resched = if self.need_resched.is_ascii() {
            self.need_resched as u8
        } else {
            b'.'
        };
        [
            irq as u8,
            resched,
            hs as u8,
            nib(self.preempt_depth),
            nib(self.migrate_disable),
        ]
    }
}

/// One trace_pipe line for a `bpf_trace_printk` event, newline included, e.g.
/// `           kfrun-14161   [001] b..11   710.385371: bpf_trace_printk: Hello World 0\n`.
///
/// Layout (`trace_print_context`): comm right-aligned in 16 columns, `-`, pid
/// left-aligned in 7, the CPU in three digits, the flags column, the timestamp in
/// microseconds rounded to nearest as `%5lu.%06lu`. A message that ends in a
/// newline therefore shows an empty line after it, as on the kernel.
pub fn trace_line(comm: &str, pid: u32, cpu: u32, flags: &str, ts_ns: u64, msg: &str) -> String {
    String::from_utf8_lossy(&trace_line_bytes(
        comm.as_bytes(),
        pid,
        cpu,
        flags,
        ts_ns,
        msg.as_bytes(),
    ))
    .into_owned()
}

/// [`trace_line`] over bytes: messages may hold any byte but NUL.
pub fn trace_line_bytes(
    comm: &[u8],
    pid: u32,
    cpu: u32,
    flags: &str,
    ts_ns: u64,
    msg: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + msg.len());
    let head = trace_line_head(comm, pid, cpu, flags.as_bytes());
    write_trace_line(&mut out, &head, ts_ns, msg);
    out
}

/// The start of a trace line up to the timestamp: `comm-pid [cpu] flags `,
/// which stays the same from one `bpf_trace_printk` of a run to the next
/// (callers keep it; see [`write_trace_line`]).
pub fn trace_line_head(comm: &[u8], pid: u32, cpu: u32, flags: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.resize(16usize.saturating_sub(comm.len()), b' ');
    out.extend_from_slice(comm);
    out.push(b'-');
    let mut digits = [0u8; 20];
    let n = decimal_digits(pid as u64, &mut digits);
    out.extend_from_slice(&digits[20 - n..]);
    out.resize(out.len() + 7usize.saturating_sub(n), b' ');
    out.extend_from_slice(b" [");
    let n = decimal_digits(cpu as u64, &mut digits);
    out.resize(out.len() + 3usize.saturating_sub(n), b'0');
    out.extend_from_slice(&digits[20 - n..]);
    out.extend_from_slice(b"] ");
    out.extend_from_slice(flags);
    out.push(b' ');
    out
}

/// A trace line from its `head` ([`trace_line_head`]), timestamp and message,
/// appended to `out`. On every `bpf_trace_printk`: the timestamp's digits are
/// written in place, so a line costs three copies.
pub fn write_trace_line(out: &mut Vec<u8>, head: &[u8], ts_ns: u64, msg: &[u8]) {
    const TAIL: &[u8; 20] = b": bpf_trace_printk: ";
    let usecs = ts_ns / 1000 + u64::from(ts_ns % 1000 >= 500);
    let (mut secs, mut rem) = (usecs / 1_000_000, usecs % 1_000_000);
    // "sssss.uuuuuu: bpf_trace_printk: ", seconds right-aligned in 5 columns
    // (wider when they need it), built right to left.
    let mut ts = [b' '; 48];
    let mut i = ts.len() - TAIL.len();
    ts[i..].copy_from_slice(TAIL);
    for _ in 0..6 {
        i -= 1;
        ts[i] = b'0' + (rem % 10) as u8;
        rem /= 10;
    }
    i -= 1;
    ts[i] = b'.';
    let mut n = 0;
    loop {
        i -= 1;
        ts[i] = b'0' + (secs % 10) as u8;
        secs /= 10;
        n += 1;
        if secs == 0 {
            break;
        }
    }
    i -= 5usize.saturating_sub(n);
    out.reserve(head.len() + (ts.len() - i) + msg.len() + 1);
    out.extend_from_slice(head);
    out.extend_from_slice(&ts[i..]);
    out.extend_from_slice(msg);
    out.push(b'\n');
}

/// The decimal digits of `v` at the end of `buf`; returns how many.
fn decimal_digits(mut v: u64, buf: &mut [u8; 20]) -> usize {
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return 20 - i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_mem() -> impl FnMut(u64, usize) -> Option<Vec<u8>> {
        |_, _| None
    }

    #[test]
    fn plain_and_percent() {
        let r = format_trace_printk(b"100%% %d\0", [7, 0, 0], &mut no_mem()).unwrap();
        assert_eq!((r.text().as_str(), r.ret), ("100% 7", 6));
    }

    #[test]
    fn a_repeated_format_renders_each_call_s_values() {
        let text = |fmt: &[u8], args: [u64; 3], mem: &mut ReadMem<'_>| {
            format_trace_printk(fmt, args, mem).map(|r| (r.text(), r.ret))
        };
        let mut mem = |_: u64, _: usize| Some(b"abc\0".to_vec());
        for i in 0..3u64 {
            let f = b"len %d proto %x %c|\0junk";
            let c = b'a' + i as u8;
            let want = format!("len {i} proto {:x} {}|", 0xab + i, c as char);
            let got = text(f, [i, 0xab + i, c as u64], &mut no_mem()).unwrap();
            assert_eq!(got, (want.clone(), want.len() as i64));
        }
        // Another format with the same prefix, a format reading memory, an
        // invalid one, then the first again.
        assert_eq!(
            text(b"len %d!\0", [5, 0, 0], &mut no_mem()).unwrap().0,
            "len 5!"
        );
        assert_eq!(
            text(b"s=%s %d\0", [1, 2, 0], &mut mem).unwrap().0,
            "s=abc 2"
        );
        assert_eq!(
            text(b"s=%s %d\0", [1, 3, 0], &mut mem).unwrap().0,
            "s=abc 3"
        );
        assert!(text(b"%d %d %d %d\0", [1, 2, 3], &mut no_mem()).is_err());
        assert_eq!(
            text(b"len %d!\0", [6, 0, 0], &mut no_mem()).unwrap(),
            ("len 6!".to_string(), 6)
        );
    }

    #[test]
    fn unterminated_format_is_einval() {
        let e = format_trace_printk(b"abc", [0; 3], &mut no_mem()).unwrap_err();
        assert_eq!(e, PrintkError::Unterminated { size: 3 });
        assert_eq!(e.errno(), 22);
    }

    #[test]
    fn huge_width_costs_no_memory() {
        let r = format_bpf_snprintf(b"%99999999d\0", &[1], 8, &mut no_mem()).unwrap();
        assert_eq!(r.ret, FIELD_WIDTH_MAX as i64 + 1);
        assert_eq!(r.out, b"       \0");
    }

    #[test]
    fn random_formats_never_panic_and_respect_bounds() {
        // A fixed xorshift stream: formats over the characters that matter.
        let alphabet = b"%%%dilsxXcpKkuBSIi46 -+0123456789.#*\x01\x7f\xa0\xc3\xe9ab\n";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mem = vec![b'q'; 700];
        let mut read = |addr: u64, len: usize| {
            let a = addr.checked_sub(0x1000)? as usize;
            (a < mem.len()).then(|| mem[a..mem.len().min(a + len)].to_vec())
        };
        for _ in 0..20_000 {
            let n = (next() % 24) as usize;
            let mut fmt: Vec<u8> = (0..n)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            fmt.push(0);
            let arg = |v: u64| if v & 1 == 0 { 0x1000 + v % 800 } else { v };
            let args: Vec<u64> = (0..12).map(|_| arg(next())).collect();
            if let Ok(r) = format_trace_printk(&fmt, [args[0], args[1], args[2]], &mut read) {
                assert!(r.msg.len() < MAX_BPRINTF_BUF && r.ret >= r.msg.len() as i64);
            }
            let size = (next() % 40) as u32;
            if let Ok(r) = format_bpf_snprintf(&fmt, &args, size, &mut read) {
                assert!(r.out.len() <= size as usize && r.ret >= 1);
                assert_eq!(r.out.len(), (r.ret as usize).min(size as usize));
            }
        }
    }

    #[test]
    fn trace_lines_are_laid_out_as_the_kernel_s() {
        let line = trace_line_bytes(
            b"kfrun",
            14161,
            1,
            "b..11",
            710_385_371_000,
            b"Hello World 0",
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "           kfrun-14161   [001] b..11   710.385371: bpf_trace_printk: Hello World 0\n"
        );
        // Long fields overflow their columns rather than being cut.
        let line = trace_line_bytes(
            b"a-very-long-command",
            123_456_789,
            1234,
            "..s2.",
            123_456_000_000_499,
            b"x",
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "a-very-long-command-123456789 [1234] ..s2. 123456.000000: bpf_trace_printk: x\n"
        );
    }

    #[test]
    fn timestamp_rounds_to_nearest_microsecond() {
        let l = trace_line("x", 1, 0, "b..11", 1_000_000_499, "m");
        assert!(l.contains("     1.000000: "), "{l}");
        let l = trace_line("x", 1, 0, "b..11", 1_000_000_500, "m");
        assert!(l.contains("     1.000001: "), "{l}");
    }

    #[test]
    fn flags_render() {
        assert_eq!(TraceFlags::PROG_TEST_RUN.render(), "b..11");
        assert_eq!(TraceFlags::XDP_SOFTIRQ.render(), "..s2.");
        let f = TraceFlags {
            need_resched: 'N',
            softirq: true,
            preempt_depth: 2,
            migrate_disable: 0,
            ..TraceFlags::PROG_TEST_RUN
        };
        assert_eq!(f.render(), "bNs2.");
    }
}
