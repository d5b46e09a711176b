//! `cargo xtask error-docs [--list] [CRATE...]`: counts the public functions returning a
//! `Result` in `crates/CRATE/src` (default: every crate: core, autograd, nn, optim, data,
//! vision, hub, cuda, cli, distributed, tensorboard) and how many have an `# Errors` section
//! in their doc comment; `--list` names the ones without. Read as text: a
//! `pub fn` line whose signature (up to `{` or `;`) returns `...Result`, outside `#[cfg(test)]`.

use std::path::Path;

/// The `(functions, documented, missing)` of one source file's text.
fn scan(text: &str, file: &str) -> (usize, usize, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut n, mut have, mut missing) = (0, 0, Vec::new());
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if !(t.starts_with("pub fn ") || t.starts_with("pub const fn ")) {
            continue;
        }
        let mut sig = String::new();
        for l in &lines[i..] {
            sig.push_str(l);
            if l.contains('{') || l.contains(';') {
                break;
            }
        }
        let head = sig.split('{').next().unwrap_or("");
        let returns_result = head
            .rsplit_once("->")
            .is_some_and(|(_, r)| r.split('<').next().unwrap_or("").trim().ends_with("Result"));
        if !returns_result {
            continue;
        }
        n += 1;
        let doc = lines[..i]
            .iter()
            .rev()
            .take_while(|l| {
                let l = l.trim_start();
                l.starts_with("///") || l.starts_with("#[")
            })
            .any(|l| l.contains("# Errors"));
        if doc {
            have += 1;
        } else {
            missing.push(format!("{file}:{}: {}", i + 1, t));
        }
    }
    (n, have, missing)
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Prints the counts per crate and in total; true unless a crate folder is missing.
pub fn run(args: &[String]) -> bool {
    let list = args.iter().any(|a| a == "--list");
    let mut crates: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    if crates.is_empty() {
        crates = vec![
            "core",
            "autograd",
            "nn",
            "optim",
            "data",
            "vision",
            "hub",
            "cuda",
            "cli",
            "distributed",
            "tensorboard",
        ];
    }
    let (mut tn, mut th) = (0, 0);
    for c in crates {
        let src = Path::new("crates").join(c).join("src");
        if !src.is_dir() {
            eprintln!("xtask error-docs: no folder {}", src.display());
            return false;
        }
        let mut files = Vec::new();
        walk(&src, &mut files);
        files.sort();
        let (mut n, mut have, mut missing) = (0, 0, Vec::new());
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let (a, b, m) = scan(&text, &f.display().to_string());
            n += a;
            have += b;
            missing.extend(m);
        }
        println!("{c:8} pub fn -> Result: {n:4}  with # Errors: {have:4}");
        if list {
            for m in missing {
                println!("    {m}");
            }
        }
        tn += n;
        th += have;
    }
    println!(
        "{:8} pub fn -> Result: {tn:4}  with # Errors: {th:4}",
        "total"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn counts_documented_and_missing_fallible_functions() {
        let text = "/// A.\n///\n/// # Errors\n/// Bad input.\npub fn a() -> Result<()> {}\n\
                    /// B.\npub fn b(x: u8)\n    -> crate::Result<u8> {}\n\
                    /// C.\npub fn c() -> u8 {}\n\
                    #[cfg(test)]\nmod tests { pub fn d() -> Result<()> {} }\n";
        let (n, have, missing) = scan(text, "f.rs");
        assert_eq!((n, have), (2, 1));
        assert_eq!(missing, vec!["f.rs:7: pub fn b(x: u8)".to_string()]);
    }
}
