//! Loads single programs of objects as `bpfvm prog loadall` would (each one
//! alone) and prints bpfvm's verdict: `accepted`, or `refused ERRNO message`.
//! Input lines on stdin: `OBJECT<TAB>PROGRAM[<TAB>MAP=N,MAP=N[<TAB>anything]]`
//! (the maps' max_entries, as a loader sets them before loading); output lines:
//! the input line, a tab, the verdict.
//!
//! cargo run --release -p bpfvm --example load_verdicts -- [DIR] < list.tsv
//! (DIR: where relative OBJECT paths start)

use bpfvm::{LoadOpts, Object, Runtime};
use std::io::BufRead;
use std::path::PathBuf;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_default();
    for line in std::io::stdin().lock().lines().map_while(|l| l.ok()) {
        let mut f = line.split('\t');
        let (Some(obj), Some(name)) = (f.next(), f.next()) else {
            continue;
        };
        let verdict = match Object::open(dir.join(obj)) {
            Err(e) => format!("unparsable {e}"),
            Ok(mut o) => {
                for kv in f.next().unwrap_or("").split(',') {
                    if let Some((m, n)) = kv.split_once('=') {
                        if let (Some(d), Ok(n)) =
                            (o.maps.iter_mut().find(|d| d.name == m), n.parse())
                        {
                            d.max_entries = n;
                        }
                    }
                }
                let rt = Runtime::with_cpus(1);
                let opts = LoadOpts {
                    programs: Some(vec![name.to_string()]),
                    ..Default::default()
                };
                match rt.load_object_with(&o, None, &opts) {
                    Ok(_) => "accepted".to_string(),
                    Err(e) => format!("refused {} {e}", e.errno()),
                }
            }
        };
        println!("{line}\t{verdict}");
    }
}
