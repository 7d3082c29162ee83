//! Unit tests of the abstract domain: tnum arithmetic against concrete values,
//! bounds refinement, and the register text.

use crate::reg::{reg_text, Reg};
use crate::tnum::Tnum;

fn members(t: Tnum) -> Vec<u64> {
    // All values of a tnum with at most 8 unknown bits.
    let bits: Vec<u32> = (0..64).filter(|b| t.mask >> b & 1 == 1).collect();
    assert!(bits.len() <= 8);
    (0..1u64 << bits.len())
        .map(|k| {
            let mut v = t.value;
            for (i, b) in bits.iter().enumerate() {
                if k >> i & 1 == 1 {
                    v |= 1 << b;
                }
            }
            v
        })
        .collect()
}

#[test]
fn tnum_ops_contain_concrete_results() {
    let samples = [
        Tnum {
            value: 0,
            mask: 0x7,
        },
        Tnum {
            value: 0x10,
            mask: 0x3,
        },
        Tnum::konst(5),
        Tnum {
            value: 0x100,
            mask: 0x0f0,
        },
        Tnum {
            value: 1,
            mask: 0x6,
        },
    ];
    for a in samples {
        for b in samples {
            for x in members(a) {
                for y in members(b) {
                    assert!(a.add(b).contains(Tnum::konst(x.wrapping_add(y))));
                    assert!(a.sub(b).contains(Tnum::konst(x.wrapping_sub(y))));
                    assert!(a.and(b).contains(Tnum::konst(x & y)));
                    assert!(a.or(b).contains(Tnum::konst(x | y)));
                    assert!(a.xor(b).contains(Tnum::konst(x ^ y)));
                    assert!(a.mul(b).contains(Tnum::konst(x.wrapping_mul(y))));
                }
            }
        }
    }
}

#[test]
fn tnum_range() {
    let t = Tnum::range(0, 255);
    assert_eq!(
        t,
        Tnum {
            value: 0,
            mask: 0xff
        }
    );
    assert!(Tnum::range(5, 5).is_const());
    assert!(Tnum::range(0, u64::MAX).is_unknown());
}

#[test]
fn bounds_sync_from_and() {
    let mut r = Reg::unknown();
    r.var_off = Tnum {
        value: 0,
        mask: 0x3fff,
    };
    r.sync_bounds();
    assert_eq!((r.umin, r.umax, r.smin, r.smax), (0, 0x3fff, 0, 0x3fff));
    assert_eq!(
        (r.u32_min, r.u32_max, r.s32_min, r.s32_max),
        (0, 0x3fff, 0, 0x3fff)
    );
}

#[test]
fn register_text_matches_kernel_forms() {
    let none = |_: u32| (String::new(), 0, 0);
    let mut r = Reg::unknown();
    r.var_off = Tnum {
        value: 0,
        mask: 0xff,
    };
    r.sync_bounds();
    assert_eq!(
        reg_text(&r, 0, &none),
        "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
    );
    let mut u = Reg::unknown();
    u.var_off = Tnum {
        value: 0,
        mask: 0xffff_ffff,
    };
    u.sync_bounds();
    assert_eq!(
        reg_text(&u, 0, &none),
        "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"
    );
    assert_eq!(reg_text(&Reg::konst(-18i64 as u64), 0, &none), "-18");
    assert_eq!(reg_text(&Reg::konst(0x86dd), 0, &none), "0x86dd");
    assert_eq!(reg_text(&Reg::unknown(), 0, &none), "scalar()");
}
