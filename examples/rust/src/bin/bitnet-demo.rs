//! Generate text with libbitnet from Rust.
//!
//!     bitnet-demo -m model.gguf -p "Once upon a time" -n 64 [--temp 0] [-t N] [-c N] [-s SEED] [--ids]
//!
//! Prints the generated text (not the prompt) as it streams; --ids prints
//! the generated token ids on one line instead.

use std::io::Write;
use std::process::exit;

use bitnet::{Context, Model, Sampler};

struct Args {
    model: String,
    prompt: String,
    n_predict: usize,
    threads: i32,
    n_ctx: i32,
    seed: u64,
    temp: f32,
    ids: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: bitnet-demo -m MODEL [-p PROMPT] [-n N] [-t THREADS] [-c CTX] [-s SEED] [--temp T] [--ids]"
    );
    exit(2)
}

fn parse<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
    match v.as_deref().map(str::parse::<T>) {
        Some(Ok(x)) => x,
        _ => {
            eprintln!("bitnet-demo: {} needs a valid value", flag);
            exit(2)
        }
    }
}

fn parse_args() -> Args {
    let mut a = Args {
        model: String::new(),
        prompt: String::new(),
        n_predict: 64,
        threads: 0,
        n_ctx: 0,
        seed: 0,
        temp: 0.8,
        ids: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-m" | "--model" => a.model = parse(&flag, it.next()),
            "-p" | "--prompt" => a.prompt = parse(&flag, it.next()),
            "-n" | "--n-predict" => a.n_predict = parse(&flag, it.next()),
            "-t" | "--threads" => a.threads = parse(&flag, it.next()),
            "-c" | "--ctx-size" => a.n_ctx = parse(&flag, it.next()),
            "-s" | "--seed" => a.seed = parse(&flag, it.next()),
            "--temp" => a.temp = parse(&flag, it.next()),
            "--ids" => a.ids = true,
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("bitnet-demo: unknown flag {}", flag);
                usage()
            }
        }
    }
    if a.model.is_empty() {
        usage()
    }
    a
}

fn run(a: &Args) -> bitnet::Result<()> {
    let model = Model::load(&a.model)?;
    let mut ctx = Context::builder(&model)
        .n_ctx(a.n_ctx)
        .n_threads(a.threads)
        .build()?;
    let mut smp = Sampler::builder(&model)
        .temperature(a.temp)
        .seed(a.seed)
        .build()?;
    let prompt = model.tokenize(&a.prompt, true, true)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.ids {
        let mut ids = Vec::new();
        for tok in bitnet::generate_tokens(&mut ctx, &mut smp, &prompt, a.n_predict)? {
            ids.push(tok?.to_string());
        }
        let _ = writeln!(out, "{}", ids.join(" "));
    } else {
        for piece in bitnet::generate(&mut ctx, &mut smp, &prompt, a.n_predict)? {
            let _ = out.write_all(piece?.as_bytes());
            let _ = out.flush();
        }
        let _ = writeln!(out);
    }
    Ok(())
}

fn main() {
    let a = parse_args();
    if let Err(e) = run(&a) {
        eprintln!("bitnet-demo: {}", e);
        exit(1);
    }
}
