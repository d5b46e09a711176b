//! Developer tasks: `cargo xtask ci` (fmt check + clippy + tests), `cargo xtask bench` and
//! `cargo xtask error-docs` (which fallible public functions document their errors).

mod error_docs;

use std::process::{exit, Command};

fn run(cmd: &str, args: &[&str]) -> bool {
    eprintln!("$ {cmd} {}", args.join(" "));
    match Command::new(cmd).args(args).status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask: cannot run {cmd}: {e}");
            false
        }
    }
}

fn ci() -> bool {
    run("cargo", &["fmt", "--all", "--", "--check"])
        && run(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
        && run("cargo", &["test", "--workspace"])
}

fn bench(what: &str) -> bool {
    let all = what == "all";
    let mut ok = true;
    if all || what == "core" {
        for n in ["1024", "2048"] {
            ok &= run(
                "cargo",
                &[
                    "run",
                    "--release",
                    "-p",
                    "mlfw-core",
                    "--example",
                    "bench_matmul",
                    "--",
                    n,
                ],
            );
        }
        ok &= run(
            "cargo",
            &[
                "run",
                "--release",
                "-p",
                "mlfw-core",
                "--example",
                "bench_ops",
            ],
        );
    }
    if all || what == "autograd" {
        ok &= run(
            "cargo",
            &[
                "run",
                "--release",
                "-p",
                "mlfw-autograd",
                "--example",
                "bench_graph",
            ],
        );
    }
    if all || what == "data" {
        ok &= run(
            "cargo",
            &[
                "run",
                "--release",
                "-p",
                "mlfw-data",
                "--example",
                "loader_throughput",
            ],
        );
    }
    if all || what == "lenet" {
        for b in ["64", "256"] {
            ok &= run(
                "cargo",
                &[
                    "run",
                    "--release",
                    "-p",
                    "mlfw-cli",
                    "--",
                    "bench",
                    "--model",
                    "lenet5",
                    "--batch-size",
                    b,
                ],
            );
        }
    }
    if all || what == "resnet" {
        ok &= run(
            "cargo",
            &[
                "run",
                "--release",
                "-p",
                "mlfw-vision",
                "--example",
                "bench_resnet",
            ],
        );
    }
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ok = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(args.get(1).map(String::as_str).unwrap_or("all")),
        Some("error-docs") => error_docs::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | cargo xtask bench [all|core|autograd|data|lenet|resnet] | cargo xtask error-docs [--list] [CRATE...]"
            );
            exit(2);
        }
    };
    exit(if ok { 0 } else { 1 });
}
