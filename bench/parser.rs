//! Micro-benchmark of the response-head parser: bytes per second, whole and in chunks.
//!
//! `cargo bench --bench parser`. CI only compiles it (`cargo bench --no-run`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use headprobe::proto::http::{HeadParser, Progress};

const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 20:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

fn cdn() -> Vec<u8> {
    let mut head = b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload; as=style\r\n\r\nHTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..30 {
        head.extend_from_slice(
            format!("X-Cache-Header-{i}: value-{i}-{}\r\n", "x".repeat(40)).as_bytes(),
        );
    }
    head.extend_from_slice(b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n");
    head
}

fn parse(bytes: &[u8], chunk: usize) {
    let mut p = HeadParser::new(65536);
    for piece in bytes.chunks(chunk) {
        if p.feed(piece) != Ok(Progress::Partial) {
            break;
        }
    }
    assert!(p.is_complete());
    std::hint::black_box(p.final_block().map(|b| p.headers(b).len()));
}

fn bench(c: &mut Criterion) {
    let cdn = cdn();
    let mut group = c.benchmark_group("head_parser");
    for (name, input) in [("nginx", NGINX), ("cdn", cdn.as_slice())] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        for chunk in [usize::MAX, 16] {
            let label = if chunk == usize::MAX {
                "whole".to_string()
            } else {
                format!("chunks_of_{chunk}")
            };
            group.bench_with_input(BenchmarkId::new(name, label), input, |b, input| {
                b.iter(|| parse(input, chunk.min(input.len())))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
