//! What differs between the host kernel's text and bpfvm's by design, masked
//! so that the rest can be compared: map ids and helper addresses in `xlated`
//! dumps, kernel addresses and liveness notes in verifier logs.

/// An `xlated` dump with map ids (`map[id:7]` -> `map[id:N]`) and helper call
/// numbers (the kernel prints an address after `#`, bpfvm the helper id)
/// masked; everything else must match.
pub fn mask_xlated(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = String::new();
        let mut rest = line;
        while let Some(i) = rest.find("map[id:") {
            l.push_str(&rest[..i]);
            l.push_str("map[id:N");
            let tail = &rest[i + 7..];
            rest = &tail[tail.find(']').unwrap_or(0)..];
        }
        l.push_str(rest);
        if l.contains(") call bpf_") {
            if let Some(h) = l.rfind('#') {
                l.truncate(h + 1);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The kernel's error in a verifier log: the last line before the
/// statistics (`processed N insns ...`), skipping state dumps.
pub fn error_line(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| l.starts_with("processed "))
        .unwrap_or(lines.len());
    let mut line = lines[..end]
        .iter()
        .rev()
        .find(|l| {
            !l.trim().is_empty() && !l.starts_with("cur state:") && !l.starts_with("old state:")
        })
        .map(|s| s.to_string())
        .unwrap_or_default();
    // Some kernel messages lack their newline and run into the statistics.
    if let Some(i) = line.find("processed ") {
        line.truncate(i);
    }
    line
}

/// The verifier log lines worth comparing: the trace, without liveness and
/// precision notes, with kernel addresses and map references masked (`ADDR`).
pub fn normalise_log(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in log.lines() {
        if l.starts_with("libbpf:")
            || l.starts_with("mark_precise")
            || l.starts_with("(0)")
            || l.starts_with("Live regs")
            || l.starts_with("func#")
            || l.starts_with("verification time")
            || l.trim().is_empty()
            || l.starts_with('#')
            || l.contains("-- BEGIN PROG LOAD LOG --")
            || is_live_regs_line(l)
        {
            continue;
        }
        let mut s = String::new();
        let mut rest = l;
        while let Some(i) = rest.find("0xffff") {
            s.push_str(&rest[..i]);
            s.push_str("ADDR");
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !c.is_ascii_hexdigit() && c != 'x')
                .unwrap_or(tail.len());
            rest = &tail[end..];
        }
        s.push_str(rest);
        out.push(mask_map_refs(&s));
    }
    out
}

/// `      7: 0......... (79) r1 = ...`: the kernel's liveness listing.
pub fn is_live_regs_line(l: &str) -> bool {
    let t = l.trim_start();
    let Some(colon) = t.find(": ") else {
        return false;
    };
    t[..colon].chars().all(|c| c.is_ascii_digit())
        && t.len() > colon + 12
        && t[colon + 2..colon + 12]
            .chars()
            .all(|c| c == '.' || c.is_ascii_digit())
        && l.starts_with(' ')
}

/// `map[id:N]` and `map[id:N][0]+off` -> `ADDR`.
fn mask_map_refs(s: &str) -> String {
    let mut out = s.to_string();
    while let Some(i) = out.find("map[id:") {
        let end = out[i..].find(']').map(|e| i + e + 1).unwrap_or(out.len());
        let mut end2 = end;
        if out[end..].starts_with("[0]+") {
            end2 = end
                + 4
                + out[end + 4..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(out.len() - end - 4);
        }
        out.replace_range(i..end2, "ADDR");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlated_masks_ids_and_helper_addresses() {
        let k = "   0: (18) r1 = map[id:42]\n   2: (85) call bpf_map_lookup_elem#281472\n";
        let o = "   0: (18) r1 = map[id:1]\n   2: (85) call bpf_map_lookup_elem#1\n";
        assert_eq!(mask_xlated(k), mask_xlated(o));
        assert!(mask_xlated("r1 = map[id:3][0]+8 map[id:4]").contains("map[id:N][0]+8 map[id:N]"));
    }

    #[test]
    fn error_line_is_the_last_before_the_statistics() {
        let log =
            "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000)\n";
        assert_eq!(error_line(log), "R0 !read_ok");
        assert_eq!(
            normalise_log("0: (18) r1 = map[id:5][0]+4\n"),
            vec!["0: (18) r1 = ADDR".to_string()]
        );
    }
}
