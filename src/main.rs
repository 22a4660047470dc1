//! The `headprobe` command: parse arguments, run, map the outcome to an exit status.

use headprobe::cli::{self, Parsed};
use headprobe::{exit, Config};

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args = match cli::parse(&args) {
        Parsed::Args(args) => args,
        Parsed::Help(text) => {
            println!("{text}");
            return exit::OK;
        }
        Parsed::Error(text) => {
            eprintln!("headprobe: {}", text.trim_end());
            eprintln!("Run 'headprobe --help' for usage.");
            return exit::USAGE;
        }
    };
    if args.version {
        println!("headprobe {}", env!("CARGO_PKG_VERSION"));
        return exit::OK;
    }
    let outcome = Config::from_args(*args).and_then(headprobe::run);
    match outcome {
        Ok(outcome) => outcome.exit_code(),
        Err(usage) => {
            eprintln!("headprobe: {usage}");
            exit::USAGE
        }
    }
}
