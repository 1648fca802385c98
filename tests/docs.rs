//! The README's configuration table and the shipped examples stay true.

mod support;

use concierge::config::env::VARIABLES;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn readme_documents_every_environment_variable() {
    let readme = readme();
    for var in VARIABLES {
        assert!(readme.contains(&format!("| `{}` |", var.name)), "README lacks a table row for {}", var.name);
    }
}

#[test]
fn readme_table_names_only_variables_the_binary_reads() {
    let readme = readme();
    for line in readme.lines().filter(|l| l.starts_with("| `CONCIERGE_") || l.starts_with("| `SENSU_")) {
        let name = line.trim_start_matches("| `").split('`').next().unwrap();
        assert!(VARIABLES.iter().any(|v| v.name == name), "README documents {name}, which nothing reads");
    }
}

#[test]
fn readme_starts_with_the_two_commands() {
    let readme = readme();
    let block: Vec<&str> = readme.lines().skip_while(|l| !l.starts_with("```")).skip(1).take(2).collect();
    assert!(block[0].starts_with("cargo run --release -- run"), "{block:?}");
    assert!(block[1].starts_with("scripts/test.sh"), "{block:?}");
}

#[test]
fn every_example_check_validates_and_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out =
        support::bin::concierge().args(["-d", "checks", "config", "--validate"]).current_dir(root).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "configuration is valid\n");
    let settings = concierge::config::Loaded::load(&concierge::config::Sources {
        config_dirs: vec![format!("{root}/checks").into()],
        ..Default::default()
    })
    .unwrap()
    .validate()
    .unwrap();
    let checks = settings.checks;
    assert!(checks.len() >= 3);
    for check in checks {
        let name = check["name"].as_str().unwrap();
        let out = support::bin::concierge()
            .args(["-d", "checks", "check", name, "--json"])
            .current_dir(root)
            .output()
            .unwrap();
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = result["check"]["status"].as_i64().unwrap();
        assert!((0..=2).contains(&status), "{name}: {result}");
        assert_eq!(out.status.code(), Some(status as i32));
    }
}
