//! `--ordered` with far more targets than slots: every run finishes, in input order,
//! and a slow first target never makes the run buffer more than `-c` records.

use std::time::Duration;

use crate::util::*;

/// 2,000 tokens: three in five to a live server, one to a refused port, one invalid.
fn mixed_list(server: &Server, n: usize) -> Vec<String> {
    let refused = refused_addr();
    (0..n)
        .map(|i| match i % 5 {
            0..=2 => format!("http://{}/{i}", server.target()),
            3 => format!("http://{refused}/{i}"),
            _ => format!("ftp://nowhere/{i}"),
        })
        .collect()
}

fn kind_for(i: usize) -> &'static str {
    match i % 5 {
        0..=2 => "200",
        3 => "refused",
        _ => "invalid_target",
    }
}

#[test]
fn ordered_status_with_many_more_targets_than_slots_finishes_in_input_order() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let list = mixed_list(&server, 2000);
    let file = temp_file("ordered-status.txt", list.join("\n").as_bytes());
    for c in ["2", "16", "256"] {
        for run in 0..3 {
            let out = headprobe()
                .args(["--ordered", "--format", "status", "-c", c, "-f"])
                .arg(&file)
                .run();
            out.expect_code(1);
            let rows = out.status_rows();
            assert_eq!(rows.len(), list.len(), "-c {c}, run {run}: records lost");
            for (i, row) in rows.iter().enumerate() {
                assert_eq!(
                    row[0], list[i],
                    "-c {c}, run {run}: record {i} out of order"
                );
                assert_eq!(row[1], kind_for(i), "-c {c}, run {run}: record {i}");
            }
        }
    }
}

#[test]
fn ordered_text_keeps_each_targets_lines_together_in_input_order() {
    let server = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 200 OK",
        &["Server: t", "X-A: 1"],
    )));
    let list = mixed_list(&server, 2000);
    let file = temp_file("ordered-text.txt", list.join("\n").as_bytes());
    for c in ["2", "256"] {
        let out = headprobe()
            .args(["--ordered", "-c", c, "-f"])
            .arg(&file)
            .run();
        out.expect_code(1);
        // Each line starts with its token; collapse runs of one token.
        let text = out.out();
        let mut runs: Vec<&str> = Vec::new();
        for line in text.lines() {
            let token = line.split(' ').next().unwrap();
            if runs.last() != Some(&token) {
                runs.push(token);
            }
        }
        assert_eq!(
            runs, list,
            "-c {c}: targets not whole or not in input order"
        );
        let ok_lines = text.lines().filter(|l| l.contains(" header > ")).count();
        assert_eq!(
            ok_lines,
            3 * 1200,
            "-c {c}: three head lines per live target"
        );
    }
}

#[test]
fn a_slow_first_target_never_lets_the_run_buffer_more_than_c_records() {
    let slow = Server::start(Behaviour::Hold(ok_response()));
    let fast = Server::start(Behaviour::Respond(ok_response()));
    let mut list = vec![format!("http://{}/first", slow.target())];
    list.extend((0..3000).map(|i| format!("http://{}/{i}", fast.target())));
    let file = temp_file("ordered-slow-first.txt", list.join("\n").as_bytes());
    let running = headprobe()
        .args(["--ordered", "--format", "status", "-c", "4", "-f"])
        .arg(&file)
        .spawn();
    slow.requests(1);
    // The first target holds one slot; three more targets may run, and no others.
    fast.requests(3);
    assert!(
        fast.next_request_within(Duration::from_millis(500))
            .is_none(),
        "a fifth target started while the first was unwritten: more than -c records buffered"
    );
    slow.release_all();
    let out = running.finish();
    out.expect_code(0);
    let rows = out.status_rows();
    assert_eq!(rows.len(), list.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], list[i], "record {i} out of order");
    }
}
