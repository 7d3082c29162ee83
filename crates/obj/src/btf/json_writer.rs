//! bpftool's JSON text layout, byte for byte.
//!
//! bpftool writes all its JSON (and the "plain" BTF map dump, which is the
//! same writer with hex numbers left unquoted) through a small streaming
//! writer. Its layout rules, reproduced here as observed:
//! - pretty mode indents by 4 spaces per open container, but only *names*
//!   start a new line; array elements follow each other on one line, which
//!   gives `[{`, `},{` and `[1,2,3` followed by the closing `]` on its own line;
//! - a container that received anything closes on a new line at the parent's
//!   depth; an empty one prints `[]` / `{}`;
//! - names are followed by `": "` in pretty mode and `":"` in compact mode;
//! - strings escape `"`, `\t`, `\n`, `\r`, `\f`, `\b`, and a backslash is
//!   written as `\n` (bpftool's long-standing quirk); other control bytes go
//!   out raw;
//! - the document ends with a newline.

use serde_json::Value;

use super::value::Dumped;

/// Streaming writer with bpftool's separator and indentation state.
#[derive(Debug, Clone)]
pub struct JsonWriter {
    out: String,
    depth: usize,
    /// Whether the next value or name needs a comma in front (bpftool's
    /// `sep` being `','` rather than `'\0'`).
    comma: bool,
    pretty: bool,
}

impl JsonWriter {
    /// `pretty` selects `-p` layout (also used by the plain BTF map dump).
    pub fn new(pretty: bool) -> Self {
        JsonWriter {
            out: String::new(),
            depth: 0,
            comma: false,
            pretty,
        }
    }

    fn eor(&mut self) {
        if self.comma {
            self.out.push(',');
        }
        self.comma = true;
    }

    fn eol(&mut self) {
        if self.pretty {
            self.out.push('\n');
            for _ in 0..self.depth {
                self.out.push_str("    ");
            }
        }
    }

    fn begin(&mut self, c: char) {
        self.eor();
        self.out.push(c);
        self.depth += 1;
        self.comma = false;
    }

    fn end(&mut self, c: char) {
        self.depth = self.depth.saturating_sub(1);
        if self.comma {
            self.eol();
        }
        self.out.push(c);
        self.comma = true;
    }

    fn puts(&mut self, s: &str) {
        self.out.push('"');
        for ch in s.chars() {
            match ch {
                '\t' => self.out.push_str("\\t"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\u{c}' => self.out.push_str("\\f"),
                '\u{8}' => self.out.push_str("\\b"),
                // bpftool prints a backslash as "\n"; kept for byte equality.
                '\\' => self.out.push_str("\\n"),
                '"' => self.out.push_str("\\\""),
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    pub fn start_object(&mut self) {
        self.begin('{');
    }

    pub fn end_object(&mut self) {
        self.end('}');
    }

    pub fn start_array(&mut self) {
        self.begin('[');
    }

    pub fn end_array(&mut self) {
        self.end(']');
    }

    /// An object member's name; the value must follow.
    pub fn name(&mut self, name: &str) {
        self.eor();
        self.eol();
        self.comma = false;
        self.puts(name);
        self.out.push(':');
        if self.pretty {
            self.out.push(' ');
        }
    }

    /// A value printed verbatim (bpftool's `jsonw_printf`).
    pub fn raw(&mut self, text: &str) {
        self.eor();
        self.out.push_str(text);
    }

    /// A quoted, escaped string value.
    pub fn string(&mut self, s: &str) {
        self.eor();
        self.puts(s);
    }

    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    /// Writes a whole `serde_json::Value`.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.raw("null"),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => self.raw(&n.to_string()),
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                self.start_array();
                for item in items {
                    self.value(item);
                }
                self.end_array();
            }
            Value::Object(map) => {
                self.start_object();
                for (k, item) in map {
                    self.name(k);
                    self.value(item);
                }
                self.end_object();
            }
        }
    }

    /// Writes a dumped value tree (see [`Dumped`]).
    pub fn dumped(&mut self, v: &Dumped) {
        match v {
            Dumped::Nothing => {}
            Dumped::Raw(s) => self.raw(s),
            Dumped::Str(s) => self.string(s),
            Dumped::Bool(b) => self.bool(*b),
            Dumped::Array(items) => {
                self.start_array();
                for item in items {
                    self.dumped(item);
                }
                self.end_array();
            }
            Dumped::Object(fields) => {
                self.start_object();
                for (k, item) in fields {
                    self.name(k);
                    self.dumped(item);
                }
                self.end_object();
            }
        }
    }

    /// The text so far, without the final newline.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// Ends the document as bpftool does (with a newline) and returns it.
    pub fn finish(mut self) -> String {
        self.out.push('\n');
        self.out
    }
}

/// A value as `bpftool -p` prints it (ends with a newline).
pub fn write_bpftool_pretty(v: &Value) -> String {
    let mut w = JsonWriter::new(true);
    w.value(v);
    w.finish()
}

/// A value as `bpftool -j` prints it (ends with a newline).
pub fn write_bpftool_compact(v: &Value) -> String {
    let mut w = JsonWriter::new(false);
    w.value(v);
    w.finish()
}
