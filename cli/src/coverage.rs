//! Coverage as an lcov tracefile (`genhtml` renders it): line (`DA`),
//! function (`FN`/`FNDA`) and branch (`BRDA`: each conditional jump's two
//! outcomes, on the jump's source line) coverage, added to what the file
//! already holds, so several runs accumulate.
//!
//! A line's count is the largest count of the instructions where its line
//! records start (the times the line began to run, however many
//! instructions it compiled to); a function's is the count of its first
//! instruction.

use crate::counts::Counts;
use crate::session::Session;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One source file's coverage.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct FileCov {
    /// line -> count
    pub lines: BTreeMap<u32, u64>,
    /// name -> (line, count)
    pub funcs: BTreeMap<String, (u32, u64)>,
    /// (line, block, branch) -> count, None for "-" (the jump never ran).
    pub branches: BTreeMap<(u32, u32, u32), Option<u64>>,
}

/// A tracefile: test name and files by path.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Tracefile {
    pub test: String,
    pub files: BTreeMap<String, FileCov>,
}

impl Tracefile {
    /// Parses lcov's format (the records this module writes; others are kept
    /// out).
    pub fn parse(text: &str) -> Result<Tracefile, String> {
        let mut t = Tracefile::default();
        let mut cur: Option<(String, FileCov)> = None;
        for (n, line) in text.lines().enumerate() {
            let bad = || format!("line {}: malformed record '{line}'", n + 1);
            let (tag, val) = line.split_once(':').unwrap_or((line, ""));
            let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
            match tag {
                "TN" => t.test = val.to_string(),
                "SF" => cur = Some((val.to_string(), FileCov::default())),
                "end_of_record" => {
                    let (f, c) = cur.take().ok_or_else(bad)?;
                    merge_file(t.files.entry(f).or_default(), &c);
                }
                "DA" | "FN" | "FNDA" | "BRDA" => {
                    let c = &mut cur.as_mut().ok_or_else(bad)?.1;
                    let parts: Vec<&str> = val.split(',').collect();
                    match (tag, parts.as_slice()) {
                        ("DA", [l, c2, ..]) => {
                            *c.lines.entry(num(l)? as u32).or_insert(0) += num(c2)?
                        }
                        ("FN", [l, name]) => {
                            c.funcs
                                .entry(name.to_string())
                                .or_insert((num(l)? as u32, 0))
                                .0 = num(l)? as u32
                        }
                        ("FNDA", [cnt, name]) => {
                            c.funcs.entry(name.to_string()).or_insert((0, 0)).1 += num(cnt)?
                        }
                        ("BRDA", [l, b, br, taken]) => {
                            let k = (num(l)? as u32, num(b)? as u32, num(br)? as u32);
                            let v = if *taken == "-" {
                                None
                            } else {
                                Some(num(taken)?)
                            };
                            let e = c.branches.entry(k).or_insert(None);
                            *e = add_opt(*e, v);
                        }
                        _ => return Err(bad()),
                    }
                }
                _ => {}
            }
        }
        Ok(t)
    }

    pub fn merge(&mut self, other: &Tracefile) {
        if self.test.is_empty() {
            self.test = other.test.clone();
        }
        for (f, c) in &other.files {
            merge_file(self.files.entry(f.clone()).or_default(), c);
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "TN:{}", self.test);
        for (f, c) in &self.files {
            let _ = writeln!(s, "SF:{f}");
            let mut funcs: Vec<(&String, &(u32, u64))> = c.funcs.iter().collect();
            funcs.sort_by_key(|(n, (l, _))| (*l, (*n).clone()));
            for (n, (l, _)) in &funcs {
                let _ = writeln!(s, "FN:{l},{n}");
            }
            for (n, (_, cnt)) in &funcs {
                let _ = writeln!(s, "FNDA:{cnt},{n}");
            }
            let _ = writeln!(s, "FNF:{}", funcs.len());
            let _ = writeln!(s, "FNH:{}", funcs.iter().filter(|f| f.1 .1 > 0).count());
            for ((l, b, br), v) in &c.branches {
                let t = v.map_or("-".to_string(), |v| v.to_string());
                let _ = writeln!(s, "BRDA:{l},{b},{br},{t}");
            }
            let _ = writeln!(s, "BRF:{}", c.branches.len());
            let _ = writeln!(
                s,
                "BRH:{}",
                c.branches
                    .values()
                    .filter(|v| v.is_some_and(|v| v > 0))
                    .count()
            );
            for (l, cnt) in &c.lines {
                let _ = writeln!(s, "DA:{l},{cnt}");
            }
            let _ = writeln!(s, "LF:{}", c.lines.len());
            let _ = writeln!(s, "LH:{}", c.lines.values().filter(|v| **v > 0).count());
            s.push_str("end_of_record\n");
        }
        s
    }
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    }
}

fn merge_file(into: &mut FileCov, c: &FileCov) {
    for (l, n) in &c.lines {
        *into.lines.entry(*l).or_insert(0) += n;
    }
    for (name, (l, n)) in &c.funcs {
        let e = into.funcs.entry(name.clone()).or_insert((*l, 0));
        e.1 += n;
    }
    for (k, v) in &c.branches {
        let e = into.branches.entry(*k).or_insert(None);
        *e = add_opt(*e, *v);
    }
}

/// The coverage of the counted runs. Source files are named by the path where
/// they were found on disk (genhtml reads them), else as line info has them.
pub fn from_counts(s: &mut Session, c: &Counts, test: &str) -> Tracefile {
    let mut t = Tracefile {
        test: test.to_string(),
        ..Tracefile::default()
    };
    let obj_dir = s.obj_dir.clone();
    for pc in &c.progs {
        let mut files: BTreeMap<String, FileCov> = BTreeMap::new();
        let path_of = |file: &str, s: &mut Session| -> String {
            s.sources
                .locate(file, obj_dir.as_deref())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.to_string())
        };
        // Lines: every line with code appears, hit or not; a line ran as
        // often as the instruction a line record of it starts at (the
        // instructions after it may belong to other lines BTF does not mark).
        for (slot, l, _) in &pc.src.records {
            let Some(n) = pc.insn.get(*slot) else {
                continue;
            };
            let f = path_of(&l.file, s);
            let e = files.entry(f).or_default().lines.entry(l.line).or_insert(0);
            *e = (*e).max(*n);
        }
        for (start, name) in &pc.src.funcs {
            let Some(l) = pc.src.line(*start) else {
                continue;
            };
            let f = path_of(&l.file, s);
            let cnt = pc.insn.get(*start).copied().unwrap_or(0);
            files
                .entry(f)
                .or_default()
                .funcs
                .insert(name.clone(), (l.line, cnt));
        }
        // Branches: per line, its jumps in order, two outcomes each.
        let mut block: BTreeMap<(String, u32), u32> = BTreeMap::new();
        for (slot, _) in pc.cond_jumps() {
            let Some(l) = pc.src.line(slot) else { continue };
            let f = path_of(&l.file, s);
            let b = block.entry((f.clone(), l.line)).or_insert(0);
            let ran = pc.insn[slot] > 0;
            let fc = files.entry(f).or_default();
            fc.branches
                .insert((l.line, *b, 0), ran.then_some(pc.taken[slot]));
            fc.branches
                .insert((l.line, *b, 1), ran.then_some(pc.fallen[slot]));
            *b += 1;
        }
        for (f, fc) in files {
            merge_file(t.files.entry(f).or_default(), &fc);
        }
    }
    t
}

/// Adds `t` to the tracefile at `path` (created if missing).
pub fn accumulate(path: &str, t: &Tracefile) -> Result<(), String> {
    let mut all = match std::fs::read_to_string(path) {
        Ok(text) => Tracefile::parse(&text).map_err(|e| format!("{path}: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tracefile::default(),
        Err(e) => return Err(format!("cannot read {path}: {e}")),
    };
    all.merge(t);
    std::fs::write(path, all.render()).map_err(|e| format!("cannot write {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_accumulate() {
        let mut a = Tracefile {
            test: "t".into(),
            ..Default::default()
        };
        let mut f = FileCov::default();
        f.lines.insert(3, 2);
        f.lines.insert(4, 0);
        f.funcs.insert("main".into(), (3, 2));
        f.branches.insert((4, 0, 0), Some(1));
        f.branches.insert((4, 0, 1), None);
        a.files.insert("/src/x.c".into(), f);
        let text = a.render();
        assert!(
            text.contains("BRDA:4,0,1,-\n") && text.contains("LH:1\n"),
            "{text}"
        );
        let b = Tracefile::parse(&text).unwrap();
        assert_eq!(a, b);
        let mut c = b.clone();
        c.merge(&b);
        let fc = &c.files["/src/x.c"];
        assert_eq!(fc.lines[&3], 4);
        assert_eq!(fc.branches[&(4, 0, 0)], Some(2));
        assert_eq!(fc.branches[&(4, 0, 1)], None);
        assert!(Tracefile::parse("SF:x\nDA:zz\n").is_err());
    }
}
