//! Load the walkthrough's hello.bpf.o, run its XDP program on a few packets, read
//! the counter it keeps in `.bss`, and print what it wrote to the trace pipe.
//!
//! cargo run -p bpfvm --example hello [path/to/hello.o]

use bpfvm::{Object, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/obj/hello.o"
        )
        .to_string()
    });
    let rt = Runtime::new();
    let obj = rt.load_object(&Object::open(&path)?, None)?;
    let hello = obj.prog("hello").ok_or("no program 'hello'")?;
    let bss = obj.map("hello.bss").ok_or("no map 'hello.bss'")?;

    // A minimal Ethernet frame: the program does not look at it.
    let frame = [0u8; 64];
    for _ in 0..3 {
        let r = rt.run_packet(hello, &frame)?;
        println!("retval {} (XDP_PASS is 2)", r.retval);
    }
    let counter = rt.map_lookup(bss, &0u32.to_le_bytes())?;
    println!("counter = {}", u32::from_le_bytes(counter[..4].try_into()?));
    for line in rt.trace_pipe().snapshot() {
        print!("{line}");
    }
    Ok(())
}
