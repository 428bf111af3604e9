// SPDX-License-Identifier: MIT
//
// A Rust program as a user would write it, run by lib/test/programs.sh
// under glibc's malloc and under LD_PRELOAD=liballoc.so: the two outputs
// must be identical.  Rust's allocator calls plain malloc(n) for a Layout
// whose alignment is at most 16 and at most n, so it relies on malloc
// returning 16-aligned blocks for n >= 16 (max_align_t); hashbrown's SSE2
// group loads fault on a block that is only 8-aligned.  Larger alignments
// go through posix_memalign.  Every pointer std::alloc returns is checked
// against its Layout here too, so a wrong alignment that happens not to
// fault still fails the run.
//
// Kept to what Debian's rustc (1.63) accepts.
use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::process::exit;
use std::thread;

// FNV-1a: a digest that depends on the data only.
struct Digest(u64);

impl Digest {
    fn new() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

// xorshift64: the same sequence on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[repr(align(16))]
#[derive(Clone, Copy)]
struct Pair16 {
    a: u64,
    b: u64,
}

fn check_align(what: &str, p: *const u8, align: usize) {
    if p as usize % align != 0 {
        eprintln!("{}: {:p} is not {}-aligned", what, p, align);
        exit(1);
    }
}

// Tiny maps of bytes: tables of 20 to 72 bytes, whose control bytes sit
// 16 bytes into the block and are read with aligned SSE2 loads.
fn tiny_maps(rounds: u32) -> u64 {
    let mut d = Digest::new();
    let mut keep: Vec<HashMap<u8, u8>> = Vec::new();
    for i in 0..rounds {
        let mut m = HashMap::new();
        for k in 0..(i % 7) as u8 {
            m.insert(k, k ^ i as u8);
        }
        d.u64(m.values().map(|&v| v as u64).sum());
        keep.push(m);
        if keep.len() > 100 {
            keep.clear();
        }
    }
    d.0
}

// Many small maps: each a fresh table of a few groups.
fn small_maps(seed: u64, rounds: usize) -> u64 {
    let mut rng = Rng(seed);
    let mut d = Digest::new();
    let mut maps: Vec<HashMap<u64, String>> = Vec::new();
    for r in 0..rounds {
        let mut m = HashMap::new();
        let n = (rng.next() % 24) as usize;
        for i in 0..n {
            let k = rng.next() % 1000;
            m.insert(k, format!("v{}-{}", r, i));
        }
        // Iteration order is random per map: digest sorted keys.
        let mut keys: Vec<&u64> = m.keys().collect();
        keys.sort();
        for k in keys {
            d.u64(*k);
            d.bytes(m[k].as_bytes());
        }
        maps.push(m);
        if maps.len() > 64 {
            let drop_at = (rng.next() % maps.len() as u64) as usize;
            maps.swap_remove(drop_at);
        }
    }
    d.u64(maps.iter().map(|m| m.len() as u64).sum());
    d.0
}

fn collections(seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut d = Digest::new();

    // A growing map of strings to vectors, then half of it removed.
    let mut big: HashMap<String, Vec<u32>> = HashMap::new();
    for i in 0..20000u32 {
        let len = (rng.next() % 40) as usize;
        big.insert(format!("key{}", i), (0..len as u32).map(|x| x ^ i).collect());
    }
    for i in (0..20000u32).step_by(2) {
        big.remove(&format!("key{}", i));
    }
    let mut sorted: BTreeMap<&String, &Vec<u32>> = BTreeMap::new();
    for (k, v) in &big {
        sorted.insert(k, v);
    }
    for (k, v) in &sorted {
        d.bytes(k.as_bytes());
        for x in v.iter() {
            d.u64(*x as u64);
        }
    }

    // A BTreeMap as an ordered index, with strings that grow by push.
    let mut index: BTreeMap<u64, String> = BTreeMap::new();
    for _ in 0..30000 {
        let k = rng.next() % 5000;
        let s = index.entry(k).or_insert_with(String::new);
        s.push(char::from(b'a' + (k % 26) as u8));
        if s.len() > 50 {
            s.clear();
            s.shrink_to_fit();
        }
    }
    for (k, v) in &index {
        d.u64(*k);
        d.bytes(v.as_bytes());
    }

    // 16-aligned elements in vectors of every small length.
    let mut vs: Vec<Vec<Pair16>> = Vec::new();
    for n in 1..200u64 {
        let v: Vec<Pair16> = (0..n).map(|i| Pair16 { a: i, b: n }).collect();
        check_align("Vec<Pair16>", v.as_ptr() as *const u8, 16);
        vs.push(v);
    }
    for v in &vs {
        for p in v {
            d.u64(p.a.wrapping_mul(31) ^ p.b);
        }
    }

    // Keys hashed with a fixed hasher: their set is deterministic.
    let mut h = DefaultHasher::new();
    for k in sorted.keys() {
        k.hash(&mut h);
    }
    d.u64(h.finish());
    d.0
}

// std::alloc with Layouts of alignment 8 to 4096: sizes below, at and
// above the alignment, grown and shrunk by realloc, zeroed by alloc_zeroed.
fn layouts(seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut d = Digest::new();
    let mut live: Vec<(*mut u8, Layout)> = Vec::new();
    let mut align = 8;
    while align <= 4096 {
        for &size in &[1usize, 7, 8, 15, 16, 17, 24, 40, 56, 72, 100, 1000, 5000, 70000] {
            for round in 0..8 {
                let layout = Layout::from_size_align(size, align).unwrap();
                let zeroed = round % 2 == 1;
                let p = unsafe {
                    if zeroed {
                        alloc_zeroed(layout)
                    } else {
                        alloc(layout)
                    }
                };
                if p.is_null() {
                    eprintln!("alloc({}, {}) failed", size, align);
                    exit(1);
                }
                check_align("alloc", p, align);
                let s = unsafe { std::slice::from_raw_parts_mut(p, size) };
                if zeroed && s.iter().any(|&b| b != 0) {
                    eprintln!("alloc_zeroed({}, {}) is not zero", size, align);
                    exit(1);
                }
                for (i, b) in s.iter_mut().enumerate() {
                    *b = (i as u64 ^ round as u64 ^ size as u64) as u8;
                }
                live.push((p, layout));
            }
        }
        align *= 2;
    }
    // Resize each block, check its bytes survived, and digest them.
    for (p, layout) in live.iter_mut() {
        let old = layout.size();
        let new = match rng.next() % 3 {
            0 => old / 2 + 1,
            1 => old * 3 + 5,
            _ => old + 4096,
        };
        let q = unsafe { realloc(*p, *layout, new) };
        if q.is_null() {
            eprintln!("realloc to {} failed", new);
            exit(1);
        }
        check_align("realloc", q, layout.align());
        let keep = if new < old { new } else { old };
        let s = unsafe { std::slice::from_raw_parts(q, keep) };
        for (i, &b) in s.iter().enumerate() {
            let want = s[0] ^ (i as u8);
            if b != want {
                eprintln!("realloc lost byte {} of {}", i, old);
                exit(1);
            }
        }
        d.bytes(s);
        *p = q;
        *layout = Layout::from_size_align(new, layout.align()).unwrap();
    }
    for (p, layout) in live {
        unsafe { dealloc(p, layout) };
    }
    d.0
}

fn main() {
    println!("tiny maps: {:016x}", tiny_maps(100000));
    println!("small maps: {:016x}", small_maps(1, 40000));
    println!("collections: {:016x}", collections(2));
    println!("layouts: {:016x}", layouts(3));

    // The same in threads, each with its own heap; frees cross threads
    // when the results are dropped here.
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            thread::spawn(move || {
                let maps: Vec<HashMap<u64, u64>> = (0..2000)
                    .map(|i| (0..(i % 13)).map(|k| (k, k * t + i)).collect())
                    .collect();
                (small_maps(10 + t, 10000) ^ collections(20 + t), maps)
            })
        })
        .collect();
    let mut d = Digest::new();
    for w in workers {
        let (v, maps) = w.join().unwrap();
        d.u64(v);
        d.u64(maps.iter().map(|m| m.values().sum::<u64>()).sum());
    }
    println!("threads: {:016x}", d.0);
}
