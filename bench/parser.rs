//! Micro-benchmarks of the response-head parser (bytes per second, whole and in chunks)
//! and of HPACK decoding, headprobe's decoder beside loona-hpack's, on a fresh
//! connection's state as each probe has.
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

/// RFC 7541 C.6.1: a response head of four Huffman-coded fields, two indexed.
const HPACK_RESPONSE: &str = "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 \
    0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3";

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn bench_hpack(c: &mut Criterion) {
    let block = unhex(HPACK_RESPONSE);
    let mut group = c.benchmark_group("hpack");
    group.throughput(Throughput::Bytes(block.len() as u64));
    group.bench_function("headprobe", |b| {
        b.iter(|| {
            let mut d = headprobe::proto::hpack::Decoder::new(4096);
            let mut n = 0;
            d.decode(&block, |name, value| n += name.len() + value.len())
                .unwrap();
            std::hint::black_box(n)
        })
    });
    group.bench_function("loona_hpack", |b| {
        b.iter(|| {
            let mut d = loona_hpack::Decoder::new();
            let mut n = 0;
            d.decode_with_cb(&block, |name, value| n += name.len() + value.len())
                .unwrap();
            std::hint::black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_hpack);
criterion_main!(benches);
