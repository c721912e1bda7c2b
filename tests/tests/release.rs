//! The release tarball (SPEC §1): exactly the shipped paths, owned 0:0, mode 0755, its
//! .sha256 matching, every binary static and stripped.

use std::collections::BTreeMap;
use std::process::Command;

use custos_tests::sandbox::elf_facts;
use custos_tests::{arch, bin, tarball};

const DIRS: &[&str] = &[
    "etc/",
    "etc/cont-finish.d/",
    "etc/cont-init.d/",
    "etc/fix-attrs.d/",
    "etc/services.d/",
    "usr/",
    "usr/bin/",
    "usr/libexec/",
    "usr/libexec/custos/",
];

const BINARIES: &[&str] = &[
    "init",
    "usr/bin/fix-attrs",
    "usr/bin/setuidgid",
    "usr/bin/svctl",
    "usr/bin/svlog",
    "usr/bin/with-contenv",
    "usr/libexec/custos/supervise",
];

#[test]
fn tarball_lists_exactly_the_shipped_paths() {
    let tar = tarball();
    let out = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-tvJf")
        .arg(&tar)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar -tvJf {}: {}",
        tar.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    // "drwxr-xr-x 0/0   0 1970-01-01 00:00 etc/"
    let mut got = BTreeMap::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(
            fields.len() == 6,
            "unexpected tar line (a link, or a space in a name?): {line:?}"
        );
        got.insert(
            fields[5].to_string(),
            (fields[0].to_string(), fields[1].to_string()),
        );
    }
    let mut want = BTreeMap::new();
    for d in DIRS {
        want.insert(d.to_string(), ("drwxr-xr-x".to_string(), "0/0".to_string()));
    }
    for b in BINARIES {
        want.insert(b.to_string(), ("-rwxr-xr-x".to_string(), "0/0".to_string()));
    }
    assert_eq!(got, want, "{}:\n{listing}", tar.display());
}

#[test]
fn sha256_file_matches() {
    let tar = tarball();
    let dir = tar.parent().expect("dist dir");
    let name = tar
        .file_name()
        .and_then(|n| n.to_str())
        .expect("tarball name");
    let sum = format!("{name}.sha256");
    let content = std::fs::read_to_string(dir.join(&sum))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(&sum).display()));
    assert!(
        content.trim_end().ends_with(&format!("  {name}")),
        "{sum} names the tarball by its bare name: {content:?}"
    );
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg(&sum)
        .current_dir(dir)
        .output()
        .expect("run sha256sum");
    assert!(
        out.status.success(),
        "sha256sum -c {sum} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn binaries_are_static_and_stripped() {
    let machine = if arch() == "arm64" { 183 } else { 62 };
    let mut bad = Vec::new();
    for b in BINARIES {
        let name = b.rsplit('/').next().unwrap();
        let path = bin(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match elf_facts(&bytes) {
            Err(e) => bad.push(format!("{b}: {e}")),
            Ok(f) => {
                if f.machine != machine {
                    bad.push(format!(
                        "{b}: e_machine {} (want {machine} for {})",
                        f.machine,
                        arch()
                    ));
                }
                if f.has_interp {
                    bad.push(format!(
                        "{b}: dynamically linked (has a PT_INTERP program header)"
                    ));
                }
                if f.has_symtab {
                    bad.push(format!("{b}: not stripped (has a .symtab section)"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The checks above can fail: this test binary is dynamically linked and not stripped.
#[test]
fn elf_checks_see_dynamic_and_unstripped_binaries() {
    let me = std::env::current_exe().expect("current_exe");
    let f = elf_facts(&std::fs::read(&me).expect("read the test binary"))
        .expect("parse the test binary");
    assert!(f.has_interp && f.has_symtab, "{}: {f:?}", me.display());
    assert!(elf_facts(b"#!/bin/sh\n").is_err());
}
