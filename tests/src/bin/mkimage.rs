//! Builds a test disk image and prints its path: `cargo run -p vm-tests --bin mkimage -- default`.

fn main() {
    let which = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "default".to_string());
    match which.as_str() {
        "default" => println!("{}", vm_tests::default_image().disk.display()),
        other => {
            eprintln!("unknown image {other:?}; known: default");
            std::process::exit(2);
        }
    }
}
