//! Placeholder: written in its own issue.
fn main() {
    println!("not yet written");
}
