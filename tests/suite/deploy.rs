//! What ships for running on many machines: the Kubernetes manifest under `deploy/` is
//! valid YAML, its command is the one the README shows, and that command, run here for
//! each completion index, covers the list exactly once (and resumes to nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use yaml_rust2::{Yaml, YamlLoader};

use crate::metrics::{find, parse_exposition, promtool_check_metrics, run_tool, scratch_dir};
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

// ---------------------------------------------------------------------------------------
// Monitoring recipes: systemd timer, Kubernetes CronJob, alert rules
// ---------------------------------------------------------------------------------------

fn yaml(path: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"));
    assert_eq!(docs.len(), 1, "{path}: one document");
    docs.remove(0)
}

/// Options a recipe may use before the binary has them (the metrics issue adds them);
/// checked once `--help` mentions `prometheus`.
const PENDING: [&str; 2] = ["-o", "--output"];

/// Every option of a recipe's `headprobe ...` line exists in `--help`, and every
/// `--format` value too.
fn assert_options_exist(line: &str, recipe: &str) {
    let help = headprobe().arg("--help").run().out();
    let wired = help.contains("prometheus");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words.first().map(|w| w.ends_with("headprobe")),
        Some(true),
        "{line}"
    );
    for (i, word) in words.iter().enumerate() {
        if !word.starts_with('-') || *word == "--" {
            continue;
        }
        let shown = [" ", "[", ", "].iter().any(|before| {
            [" ", ",", "]", "\n"]
                .iter()
                .any(|after| help.contains(&format!("{before}{word}{after}")))
        });
        if !shown && !wired && PENDING.contains(word) {
            eprintln!("{recipe}: {word} not checked yet: --help does not show the metrics options");
            continue;
        }
        assert!(
            shown,
            "{recipe} uses {word}, which headprobe --help does not show"
        );
        if *word == "--format" {
            let value = words.get(i + 1).expect("a --format value");
            if !wired && *value == "prometheus" {
                eprintln!("{recipe}: --format prometheus not checked yet");
                continue;
            }
            let formats = help
                .lines()
                .find(|l| l.trim_start().starts_with("--format"))
                .expect("--format in --help");
            assert!(
                formats.contains(value),
                "{recipe}: --format {value}: {formats}"
            );
        }
    }
}

/// The interval the alert rules assume, in seconds (`3 * 300 # 3 x interval`).
fn rules_interval() -> u64 {
    let rules = read("deploy/prometheus/headprobe-rules.yml");
    let line = rules
        .lines()
        .find(|l| l.contains("# 3 x interval") && l.contains("3 * "))
        .expect("the stale rule's 3 x interval");
    let after = &line[line.find("3 * ").unwrap() + 4..];
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the interval in seconds")
}

#[test]
fn the_systemd_recipe_runs_every_interval_into_the_textfile_directory() {
    let service = read("deploy/systemd/headprobe.service");
    let timer = read("deploy/systemd/headprobe.timer");
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(
        exec.contains(" -o /var/lib/prometheus/node-exporter/headprobe.prom "),
        "{exec}"
    );
    assert!(exec.contains("--format prometheus"), "{exec}");
    assert!(service.contains("ReadWritePaths=/var/lib/prometheus/node-exporter\n"));
    assert!(service.contains("Type=oneshot\n"));
    assert!(
        service.contains("SuccessExitStatus=1\n"),
        "exit 1 is a finished run"
    );
    assert_options_exist(exec, "headprobe.service");
    // The timer's period is the rules' interval.
    let minutes = rules_interval() / 60;
    assert!(
        timer.contains(&format!("OnCalendar=*:0/{minutes}\n")),
        "headprobe.timer does not run every {minutes} minutes"
    );
    assert!(timer.contains("WantedBy=timers.target"));
}

#[test]
fn the_cronjob_runs_every_interval_and_pushes_the_whole_file() {
    let job = yaml("deploy/k8s-cronjob.yaml");
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("CronJob"));
    let spec = &job["spec"];
    let minutes = rules_interval() / 60;
    assert_eq!(
        spec["schedule"].as_str(),
        Some(format!("*/{minutes} * * * *").as_str())
    );
    assert_eq!(spec["concurrencyPolicy"].as_str(), Some("Forbid"));
    let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    let deadline = spec["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .expect("activeDeadlineSeconds");
    assert!(
        deadline < (minutes * 60) as i64,
        "a run may outlast the schedule"
    );
    let script = |c: &Yaml| c["args"][0].as_str().expect("args[0]").to_string();
    let probe = script(&pod["initContainers"][0]);
    let line = probe
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("headprobe "))
        .expect("a headprobe line");
    let command = line.split(" || ").next().unwrap();
    assert!(command.contains("-o /out/headprobe.prom"), "{line}");
    assert_options_exist(command, "k8s-cronjob.yaml");
    let push = script(&pod["containers"][0]);
    assert!(
        push.contains("-X PUT --data-binary @/out/headprobe.prom"),
        "PUT replaces the group whole: {push}"
    );
    for c in [&pod["initContainers"][0], &pod["containers"][0]] {
        let mounts = c["volumeMounts"].as_vec().expect("volumeMounts");
        assert!(
            mounts
                .iter()
                .any(|m| m["name"].as_str() == Some("out")
                    && m["mountPath"].as_str() == Some("/out")),
            "{c:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Alerts that fire: the recipes' command line, as a user meets it
// ---------------------------------------------------------------------------------------

/// The unit's `ExecStart` words.
fn exec_start() -> Vec<String> {
    read("deploy/systemd/headprobe.service")
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The unit's command line with this machine's paths: the binary under test, `-o` into
/// `out`, `-f` reading `sites`; every other word as shipped.
fn unit_command(out: &Path, sites: &Path) -> Vec<String> {
    let mut words = exec_start();
    assert_eq!(words[0], "/usr/local/bin/headprobe", "{words:?}");
    let mut replaced = 0;
    for i in 1..words.len() {
        let path = match words[i - 1].as_str() {
            "-o" | "--output" => out,
            "-f" | "--file" => sites,
            _ => continue,
        };
        words[i] = path.to_str().expect("UTF-8 path").to_string();
        replaced += 1;
    }
    assert_eq!(replaced, 2, "ExecStart has one -o and one -f: {words:?}");
    words.remove(0);
    words
}

/// The recipes give probe_success blackbox_exporter's http_2xx meaning (redirects
/// followed, a final 2xx), and both recipes say it the same way.
#[test]
fn the_recipes_probe_as_blackbox_http_2xx_does() {
    let exec = exec_start().join(" ");
    for flag in ["-L", "--expect-status 200-299", "--http-version 1.1"] {
        assert!(
            exec.contains(&format!(" {flag} ")),
            "ExecStart lacks {flag}: {exec}"
        );
    }
    let job = yaml("deploy/k8s-cronjob.yaml");
    let script = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]
        ["args"][0]
        .as_str()
        .expect("args[0]")
        .to_string();
    let flags = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut kept = Vec::new();
        let mut i = 1;
        while i < words.len() && words[i] != "||" {
            match words[i] {
                "-o" | "-f" => i += 2,
                w => {
                    kept.push(w.to_string());
                    i += 1;
                }
            }
        }
        kept
    };
    let line = script
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("headprobe "))
        .expect("a headprobe line");
    assert_eq!(
        flags(line),
        flags(&exec),
        "the CronJob and the unit probe alike"
    );
}

/// A site stuck on 503 pages: the unit's own command line against a loopback 503 site
/// (next to one that is up and one that redirects to it), its file checked by promtool,
/// its samples fed to `promtool test rules` with the shipped rules: SiteDown fires for
/// the 503 site only, after two runs (7m), not after one.
#[test]
fn the_units_command_line_pages_for_a_site_answering_503() {
    let Some(promtool) = tool("/usr/bin/promtool", "prometheus") else {
        return;
    };
    let up = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 200 OK",
        &["Content-Length: 2"],
    )));
    let down = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 503 Service Unavailable",
        &["Content-Length: 0", "Retry-After: 60"],
    )));
    let moved = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 301 Moved Permanently",
        &[
            &format!("Location: http://{}/", up.addr()),
            "Content-Length: 0",
        ],
    )));
    let (up_url, down_url, moved_url) = (
        format!("http://{}/", up.addr()),
        format!("http://{}/", down.addr()),
        format!("http://{}/", moved.addr()),
    );
    let dir = scratch_dir("unit");
    let sites = dir.join("sites.txt");
    std::fs::write(&sites, format!("{up_url}\n{down_url}\n{moved_url}\n")).unwrap();
    let prom = dir.join("headprobe.prom");
    let out = headprobe().args(unit_command(&prom, &sites)).run();
    // SuccessExitStatus=1: a finished run with a target down.
    out.expect_code(1);
    let text = std::fs::read_to_string(&prom).expect("the unit's -o file");
    let (ok, said) = promtool_check_metrics(&promtool, text.as_bytes());
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{text}"
    );
    let samples = parse_exposition(&text);
    let success = |url: &str| find(&samples, "probe_success", &[("target", url)]);
    assert_eq!(success(&down_url), Some(0.0), "{text}");
    assert_eq!(success(&up_url), Some(1.0), "{text}");
    assert_eq!(success(&moved_url), Some(1.0), "{text}");

    // What node_exporter would serve at each scrape for 30 minutes: the file's samples,
    // with the scrape's labels, unchanged between runs.
    let mut series = String::new();
    for s in &samples {
        let mut labels = vec![
            "instance=\"host:9100\"".to_string(),
            "job=\"node\"".to_string(),
        ];
        for (k, v) in &s.labels {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"");
            labels.push(format!("{k}=\"{v}\""));
        }
        series.push_str(&format!(
            "      - series: '{}{{{}}}'\n        values: \"{}x30\"\n",
            s.name,
            labels.join(","),
            s.value
        ));
    }
    let rules = Path::new(ROOT).join("deploy/prometheus/headprobe-rules.yml");
    let test = format!(
        "rule_files:\n  - {rules}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    \
         input_series:\n{series}    alert_rule_test:\n      - eval_time: 6m\n        \
         alertname: SiteDown\n        exp_alerts: []\n      - eval_time: 8m\n        \
         alertname: SiteDown\n        exp_alerts:\n          - exp_labels:\n              \
         severity: page\n              instance: host:9100\n              job: node\n              \
         target: {down_url}\n            exp_annotations:\n              \
         summary: \"{down_url} is down\"\n              description: \"{down_url} failed two \
         headprobe runs in a row (see headprobe_probe_error for the kind).\"\n",
        rules = rules.display()
    );
    let test_file = dir.join("site-down.test.yml");
    std::fs::write(&test_file, &test).unwrap();
    let (ok, said, err) = run_tool(
        Command::new(&promtool)
            .arg("test")
            .arg("rules")
            .arg(&test_file),
        "promtool test rules",
    );
    assert!(ok, "promtool test rules:\n{said}{err}\n{test}");
    let _ = std::fs::remove_dir_all(&dir);
}
