//! Every fixture object the host kernel accepted must be accepted; refused
//! ones refused with the kernel's message. Also measures how many lines of
//! our level-2 log match the kernel's golden log.

mod common;
use bpfvm_verifier::verify;
use common::*;

#[test]
fn fixtures_match_kernel_verdicts() {
    let dir = repo().join("tests/golden/kernel");
    let mut checked = 0;
    let mut failures = Vec::new();
    let (mut lines_total, mut lines_same) = (0usize, 0usize);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(obj) = v.get("object").and_then(|o| o.as_str()) else {
            continue;
        };
        let obj = obj.trim_start_matches("obj/");
        let Some(progs) = v.get("programs").and_then(|p| p.as_object()) else {
            continue;
        };
        for (name, p) in progs {
            let verdict = p.get("verdict").and_then(|x| x.as_str()).unwrap_or("");
            let libbpf_refusal = p
                .get("error")
                .and_then(|x| x.as_str())
                .is_some_and(|e| e.contains("libbpf"));
            if (verdict != "accepted" && verdict != "refused") || libbpf_refusal {
                continue;
            }
            let Some(fx) = load_fixture(obj, name) else {
                // Objects our loader cannot open (e.g. libbpf-refused legacy maps).
                continue;
            };
            let maps = fx.maps.clone();
            let r = verify(
                &fx.insns,
                &|id| maps.iter().find(|m| m.id == id).cloned(),
                &fx.opts,
            );
            checked += 1;
            match (verdict, &r) {
                ("accepted", Ok(ok)) => {
                    let stem = path.file_stem().unwrap().to_str().unwrap();
                    let golden = dir.join("verifier").join(format!("{stem}.log"));
                    if let Ok(g) = std::fs::read_to_string(golden) {
                        let start = g
                            .find(&format!("prog '{name}': -- BEGIN PROG LOAD LOG --"))
                            .unwrap_or(0);
                        let g = &g[start..];
                        let g = &g[..g.find("-- END PROG LOAD LOG --").unwrap_or(g.len())];
                        if std::env::var("BPFVM_VERIFIER_STATS").is_ok() {
                            let k = g
                                .lines()
                                .find(|l| l.starts_with("processed "))
                                .unwrap_or("");
                            eprintln!(
                                "{obj}/{name}: ours processed {} | kernel {k}",
                                ok.stats.processed
                            );
                        }
                        let theirs = normalise(g);
                        let ours = normalise(&ok.log);
                        let n = theirs.len().max(ours.len());
                        let same = lcs(&theirs, &ours);
                        lines_total += n;
                        lines_same += same;
                        if std::env::var("BPFVM_VERIFIER_DIFF").is_ok() {
                            for (a, b) in theirs.iter().zip(&ours) {
                                if a != b {
                                    eprintln!("{obj}/{name}\n  kernel: {a}\n  ours:   {b}");
                                }
                            }
                        }
                    }
                }
                ("refused", Err(e)) => {
                    let klog = p.get("log").and_then(|x| x.as_str()).unwrap_or("");
                    // The kernel's log here is libbpf's level-1 retry: compare ours at level 1.
                    let mut o1 = fx.opts.clone();
                    o1.log_level = 1;
                    if let Err(e1) = verify(
                        &fx.insns,
                        &|id| maps.iter().find(|m| m.id == id).cloned(),
                        &o1,
                    ) {
                        let (theirs, ours) = (normalise(klog), normalise(&e1.log));
                        lines_total += theirs.len().max(ours.len());
                        lines_same += lcs(&theirs, &ours);
                        if std::env::var("BPFVM_VERIFIER_DIFF").is_ok() {
                            eprintln!(
                                "== {obj}/{name}\n{}\n--\n{}",
                                theirs.join("\n"),
                                ours.join("\n")
                            );
                        }
                    }
                    let lines: Vec<&str> = klog.lines().collect();
                    let end = lines
                        .iter()
                        .rposition(|l| l.starts_with("processed "))
                        .unwrap_or(lines.len());
                    let want = lines[..end].last().copied().unwrap_or("");
                    if e.error.reason() != want {
                        failures.push(format!(
                            "{obj}/{name}: kernel said `{want}`, we said `{}`",
                            e.error
                        ));
                    }
                }
                ("accepted", Err(e)) => failures.push(format!(
                    "{obj}/{name}: kernel accepted, we refused at {:?}: {}\n{}",
                    e.insn,
                    e.error,
                    tail(&e.log)
                )),
                (_, Ok(_)) => failures.push(format!("{obj}/{name}: kernel refused, we accepted")),
                _ => {}
            }
        }
    }
    eprintln!(
        "fixtures checked: {checked}; log lines matching the kernel's: {lines_same}/{lines_total}"
    );
    assert!(checked >= 20, "only {checked} fixture programs found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn tail(s: &str) -> String {
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(12)..].join("\n")
}

/// `BPFVM_VERIFIER_SHOW=obj/prog` prints our log for one fixture (level 7).
#[test]
fn show_log() {
    let Ok(which) = std::env::var("BPFVM_VERIFIER_SHOW") else {
        return;
    };
    let (obj, prog) = which.split_once('/').expect("obj/prog");
    let fx = load_fixture(obj, prog).expect("fixture");
    let maps = fx.maps.clone();
    let r = verify(
        &fx.insns,
        &|id| maps.iter().find(|m| m.id == id).cloned(),
        &fx.opts,
    );
    match r {
        Ok(v) => eprintln!("{}", v.log),
        Err(e) => eprintln!("{}", e.log),
    }
}
