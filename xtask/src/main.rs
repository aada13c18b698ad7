//! Project automation: `cargo xtask <command>`.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("help") | None => {
            println!("cargo xtask <command>\n\ncommands:\n  help    this text");
        }
        Some(other) => {
            eprintln!("unknown xtask command `{other}`; try `cargo xtask help`");
            std::process::exit(2);
        }
    }
}
