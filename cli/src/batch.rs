//! `bpfvm batch file FILE`: bpftool's batch mode. Each line of FILE (`-` for
//! standard input) is one command without the program name: words split on
//! blanks, `'...'` and `"..."` quote, a backslash escapes the next character
//! (and at the end of a line joins the next line), `#` outside quotes starts a
//! comment. Commands run in order, each in its own `bpfvm` process with the
//! batch's global options; the first that fails stops the batch with its exit
//! code. Plain output is the commands' own, then `processed N commands`; with
//! `-j` one array of `{"command": [...], "output": ...}` (the command's JSON,
//! or null when it printed none), as bpftool prints it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::client::print_error;
use crate::Opts;

/// Files, like the objects they load, stay under the CLI's 64 MiB input cap.
const MAX_BATCH_BYTES: u64 = 64 << 20;

/// Why a line could not be split into words.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("unterminated quoted string in command {line}")]
    Unterminated { line: usize },
}

/// One command of a batch: its words and the line it starts on (from 1).
#[derive(Debug, PartialEq, Eq)]
pub struct BatchLine {
    pub line: usize,
    pub words: Vec<String>,
}

/// Splits a batch file into commands (empty and comment-only lines dropped).
/// Like bpftool, which reads as it runs, the commands before a bad line still
/// run: they come back with the error.
pub fn parse(text: &str) -> (Vec<BatchLine>, Option<BatchError>) {
    let mut out = Vec::new();
    let err = split(text, &mut out).err();
    (out, err)
}

fn split(text: &str, out: &mut Vec<BatchLine>) -> Result<(), BatchError> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut start = 1;
    let mut line = 1;
    let mut it = text.chars().peekable();
    // The command index in messages counts commands, as bpftool's does.
    let flush = |words: &mut Vec<String>, out: &mut Vec<BatchLine>, start: usize| {
        if !words.is_empty() {
            out.push(BatchLine {
                line: start,
                words: std::mem::take(words),
            });
        }
    };
    while let Some(c) = it.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match it.next() {
                Some('\n') => line += 1,
                Some(n) => word.push(n),
                None => word.push('\\'),
            },
            (Some(_), '\n') => return Err(BatchError::Unterminated { line: out.len() }),
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => match it.next() {
                // A continued line: the command goes on.
                Some('\n') => line += 1,
                Some(n) => {
                    word.push(n);
                    in_word = true;
                }
                None => {}
            },
            (None, '#') => {
                while it.peek().is_some_and(|&n| n != '\n') {
                    it.next();
                }
            }
            (None, '\n') => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                flush(&mut words, out, start);
                line += 1;
                start = line;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                if words.is_empty() && !in_word {
                    start = line;
                }
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(BatchError::Unterminated { line: out.len() });
    }
    if in_word {
        words.push(word);
    }
    flush(&mut words, out, start);
    Ok(())
}

/// `batch file FILE`.
pub fn main(opts: &Opts, args: &[String]) -> i32 {
    let path = match args {
        [kw, p] if "file".starts_with(kw.as_str()) && !kw.is_empty() => p,
        [kw] if kw == "help" => {
            usage();
            return 0;
        }
        _ => {
            usage();
            return print_error(opts, "expected 'file FILE'");
        }
    };
    let text = match read_input(path) {
        Ok(t) => t,
        Err(e) => {
            // bpftool's strerror text, without Rust's "(os error N)".
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            return print_error(opts, &format!("Can't open file ({path}): {text}"));
        }
    };
    let (lines, bad_line) = parse(&text);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return print_error(opts, &format!("can't find the bpfvm binary: {e}")),
    };
    let depth: u32 = std::env::var("BPFVM_BATCH_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    if depth >= 8 {
        return print_error(opts, "batch files nested more than 8 deep");
    }
    let mut json_items = Vec::new();
    let mut done = 0;
    let mut code = 0;
    for l in &lines {
        let mut c = Command::new(&exe);
        if opts.json {
            c.arg(if opts.pretty { "-p" } else { "-j" });
        }
        if opts.debug {
            c.arg("-d");
        }
        if let Some(d) = &opts.state_dir {
            c.arg("--state-dir").arg(d);
        }
        c.args(&l.words)
            .env("BPFVM_BATCH_DEPTH", (depth + 1).to_string())
            .stdin(Stdio::null());
        // Plain output goes straight through; JSON is collected into the array.
        let (status, stdout) = if opts.json {
            c.stdout(Stdio::piped()).stderr(Stdio::inherit());
            match c.output() {
                Ok(o) => (o.status, o.stdout),
                Err(e) => return print_error(opts, &format!("can't run line {}: {e}", l.line)),
            }
        } else {
            match c.status() {
                Ok(s) => (s, Vec::new()),
                Err(e) => return print_error(opts, &format!("can't run line {}: {e}", l.line)),
            }
        };
        code = status.code().unwrap_or(255);
        if opts.json {
            let text = String::from_utf8_lossy(&stdout);
            let output = if text.trim().is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::String(text.into()))
            };
            json_items.push(serde_json::json!({ "command": l.words, "output": output }));
        }
        if code != 0 {
            break;
        }
        done += 1;
    }
    if code == 0 {
        if let Some(e) = &bad_line {
            code = 255;
            if opts.json {
                json_items.push(serde_json::json!({ "error": e.to_string() }));
            } else {
                print_error(opts, &e.to_string());
            }
        }
    }
    if opts.json {
        let v = serde_json::Value::Array(json_items);
        let s = if opts.pretty {
            serde_json::to_string_pretty(&v)
        } else {
            serde_json::to_string(&v)
        }
        .unwrap_or_default();
        println!("{s}");
    } else if code == 0 {
        println!("processed {done} commands");
    }
    let _ = std::io::stdout().flush();
    code
}

fn read_input(path: &str) -> std::io::Result<String> {
    let mut buf = Vec::new();
    if path == "-" {
        std::io::stdin()
            .take(MAX_BATCH_BYTES + 1)
            .read_to_end(&mut buf)?;
    } else {
        // Non-blocking open: a FIFO planted at the path fails instead of hanging.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(path)?;
        if !f.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        f.take(MAX_BATCH_BYTES + 1).read_to_end(&mut buf)?;
    }
    if buf.len() as u64 > MAX_BATCH_BYTES {
        return Err(std::io::Error::other("larger than 64 MiB"));
    }
    String::from_utf8(buf).map_err(|_| std::io::Error::other("not UTF-8 text"))
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK)
    }
}

/// The usage text (`help`, and the man page: one source, so they cannot drift).
pub fn usage_text() -> String {
    format!(
        "Usage: bpfvm batch file FILE
       bpfvm batch help

       FILE: one command per line (without 'bpfvm'), '-' for standard input
{}",
        crate::OPTIONS_USAGE
    )
}

pub fn usage() {
    eprintln!("{}", usage_text());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        let (l, e) = parse(text);
        assert_eq!(e, None, "{text:?}");
        l.into_iter().map(|l| l.words).collect()
    }

    #[test]
    fn splits_as_bpftool_does() {
        let table: &[(&str, &[&[&str]])] = &[
            ("map show\n", &[&["map", "show"]]),
            ("# only a comment\n\n   \n", &[]),
            (
                "map  show   id 1 # trailing\n",
                &[&["map", "show", "id", "1"]],
            ),
            ("prog show \\\n  id 3\n", &[&["prog", "show", "id", "3"]]),
            ("a 'b c' \"d e\"\n", &[&["a", "b c", "d e"]]),
            ("a 'x#y' b\\ c\n", &[&["a", "x#y", "b c"]]),
            ("a \"q\\\"q\"\n", &[&["a", "q\"q"]]),
            ("a ''\n", &[&["a", ""]]),
            ("x\ny", &[&["x"], &["y"]]),
        ];
        for (text, want) in table {
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|l| l.iter().map(|w| w.to_string()).collect())
                .collect();
            assert_eq!(words(text), want, "{text:?}");
        }
    }

    #[test]
    fn names_the_line_it_starts_on_and_refuses_open_quotes() {
        let (l, _) = parse("# c\n\nmap show \\\n id 1\nprog show\n");
        assert_eq!(l[0].line, 3);
        assert_eq!(l[1].line, 5);
        let (l, e) = parse("map show \"unterminated\n");
        assert!(l.is_empty());
        assert_eq!(e, Some(BatchError::Unterminated { line: 0 }));
        let (l, e) = parse("map show\nx 'open");
        assert_eq!(l.len(), 1);
        assert_eq!(e, Some(BatchError::Unterminated { line: 1 }));
    }
}
