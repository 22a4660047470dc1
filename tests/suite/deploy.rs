//! What ships for running on many machines: the Kubernetes manifest under `deploy/` is
//! valid YAML, its command is the one the README shows, and that command, run here for
//! each completion index, covers the list exactly once (and resumes to nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use yaml_rust2::{Yaml, YamlLoader};

use crate::util::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The manifest, parsed; panics with the parser's message if it is not valid YAML.
fn manifest() -> Yaml {
    let text = read("deploy/k8s-indexed-job.yaml");
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("deploy/k8s-indexed-job.yaml is not valid YAML: {e}"));
    assert_eq!(docs.len(), 1, "one document");
    docs.remove(0)
}

/// The pod's shell script, and its `headprobe` line.
fn pod_command(job: &Yaml) -> (String, String) {
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        Yaml::Array(vec![Yaml::String("sh".into()), Yaml::String("-c".into())])
    );
    let script = container["args"][0]
        .as_str()
        .expect("the script is args[0]")
        .to_string();
    let line = script
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("headprobe "))
        .expect("a headprobe line in the script")
        .to_string();
    (script, line)
}

#[test]
fn the_manifest_is_an_indexed_job_whose_command_the_readme_shows() {
    let job = manifest();
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().expect("completions");
    assert_eq!(spec["parallelism"].as_i64(), Some(n));
    assert_eq!(
        spec["template"]["spec"]["restartPolicy"].as_str(),
        Some("Never")
    );
    let (_, line) = pod_command(&job);
    assert!(
        line.contains(&format!("--shard $((JOB_COMPLETION_INDEX+1))/{n} ")),
        "{line}"
    );
    let readme = read("README.md");
    assert!(
        readme.lines().any(|l| l.trim() == line),
        "README.md does not show the manifest's command:\n{line}"
    );
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("cargo build --release")
            && dockerfile.contains("target/release/headprobe"),
        "the Dockerfile does not build the binary"
    );
}

/// The pod's script with the manifest's mount points moved under `dir`.
fn local_script(script: &str, dir: &Path, list: &Path) -> String {
    script
        .replace("/targets/hosts.txt", list.to_str().unwrap())
        .replace("/out/", &format!("{}/", dir.display()))
}

fn run_pod(script: &str, index: i64) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_headprobe")).parent().unwrap();
    let out = Command::new("sh")
        .args(["-c", script])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "pod {index} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_pods_command_covers_the_list_once_and_resumes_to_nothing() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let job = manifest();
    let n = job["spec"]["completions"].as_i64().unwrap();
    let (script, _) = pod_command(&job);
    let mut lines: Vec<String> = (0..20)
        .map(|i| format!("http://{}/t{i}", server.addr()))
        .collect();
    lines.push("not a target".into());
    let list = temp_file("k8s-list", (lines.join("\n") + "\n").as_bytes());
    let dir: PathBuf = temp_file("k8s-out", b"");
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let script = local_script(&script, &dir, &list);

    for index in 0..n {
        run_pod(&script, index);
    }
    let parts = || -> Vec<String> {
        (0..n)
            .map(|i| std::fs::read_to_string(dir.join(format!("part-{i}.jsonl"))).unwrap())
            .collect()
    };
    let first = parts();
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, part) in first.iter().enumerate() {
        for r in parse_json_lines(part) {
            let index = r["index"].as_u64().unwrap();
            assert_eq!(index % n as u64, i as u64, "pod {i} wrote index {index}");
            *seen.entry(index).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), lines.len(), "{seen:?}");
    assert!(seen.values().all(|&c| c == 1), "{seen:?}");
    server.requests(20);

    // A retried pod resumes from its file: nothing is probed, nothing appended.
    for index in 0..n {
        run_pod(&script, index);
    }
    assert_eq!(parts(), first);
    assert!(server
        .next_request_within(std::time::Duration::from_millis(100))
        .is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
