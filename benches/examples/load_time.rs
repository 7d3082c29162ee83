//! Times the runtime's load_object (verifier, maps, JIT) of one packet program.
use bpfvm::{Object, Runtime};
use bpfvm_bench::programs::PROGRAMS;
use std::time::Instant;

fn main() {
    let name = std::env::args().nth(1).unwrap_or("xdp_count/v2".into());
    let p = PROGRAMS
        .iter()
        .find(|p| p.name == name)
        .expect("no such program");
    let obj = Object::open(p.object_path()).unwrap();
    for jit in [true, false, true] {
        let rt = Runtime::new();
        rt.set_jit(jit);
        let t = Instant::now();
        let l = rt.load_object(&obj, Some(p.function)).unwrap();
        println!("jit {jit}: {:?}", t.elapsed());
        drop(l);
    }
}
