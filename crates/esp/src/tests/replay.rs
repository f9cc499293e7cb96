//! The replay window on its own, including ESN inference (RFC 4303 Appendix A).

use crate::replay::{ReplayError, ReplayWindow};

#[test]
fn sizes() {
    for bad in [0, 32, 63, 65, 1000, 1 << 17] {
        assert!(ReplayWindow::new(bad).is_none(), "{bad}");
    }
    for good in [64, 128, 1024, 1 << 16] {
        assert_eq!(ReplayWindow::new(good).unwrap().size(), good);
    }
}

#[test]
fn duplicates_too_old_reorder_slide() {
    let mut w = ReplayWindow::new(1024).unwrap();
    assert_eq!(w.check(0), Err(ReplayError::Zero));
    for s in [3u64, 1, 2, 10, 5] {
        assert_eq!(w.check(s), Ok(()));
        w.commit(s);
        assert_eq!(w.check(s), Err(ReplayError::Duplicate));
    }
    assert_eq!(w.top(), 10);
    assert_eq!(w.check(4), Ok(()));
    w.commit(2000);
    assert_eq!(w.check(976), Err(ReplayError::TooOld));
    assert_eq!(w.check(977), Ok(()));
    assert_eq!(w.check(10), Err(ReplayError::TooOld));
    assert_eq!(w.check(1999), Ok(()));
    // Slide by exactly the window size: everything old is gone, bits are clear.
    w.commit(977);
    w.commit(2000 + 1024);
    assert_eq!(w.check(2000), Err(ReplayError::TooOld));
    for s in 2001..2000 + 1024 {
        assert_eq!(w.check(s), Ok(()), "{s}");
    }
    // Slide by less than a word and by more than a word, bits of the new range clear.
    for s in 2001..2000 + 1024 {
        w.commit(s);
    }
    w.commit(2000 + 1024 + 70);
    for s in 2000 + 1024 + 1..2000 + 1024 + 70 {
        assert_eq!(w.check(s), Ok(()), "{s}");
    }
    for s in 2000 + 71..=2000 + 1024 {
        assert_eq!(w.check(s), Err(ReplayError::Duplicate), "{s}");
    }
}

#[test]
fn esn_inference_cases_a_and_b() {
    let mut w = ReplayWindow::new(1024).unwrap();
    // Fresh window (case B with high half 0): everything is subspace 0.
    assert_eq!(w.infer_esn(1), Some(1));
    assert_eq!(w.infer_esn(u32::MAX), Some(u64::from(u32::MAX)));
    // Case A: top = 2^32 - 10 (the window lies within subspace 0).
    w.reset_to((1u64 << 32) - 10);
    assert_eq!(
        w.infer_esn(u32::MAX - 9 - 1023),
        Some((1u64 << 32) - 10 - 1023)
    );
    assert_eq!(
        w.infer_esn(u32::MAX - 9 - 1024),
        Some((2u64 << 32) - 10 - 1024)
    );
    assert_eq!(w.infer_esn(5), Some((1u64 << 32) + 5));
    assert_eq!(w.infer_esn(u32::MAX), Some((1u64 << 32) - 1));
    // Case B: top = 2^32 + 3 (the window spans subspaces 0 and 1).
    w.reset_to((1u64 << 32) + 3);
    assert_eq!(w.infer_esn(2), Some((1u64 << 32) + 2));
    assert_eq!(w.infer_esn(1000), Some((1u64 << 32) + 1000));
    assert_eq!(w.infer_esn(u32::MAX), Some((1u64 << 32) - 1));
    assert_eq!(w.infer_esn(u32::MAX - 1019), Some((1u64 << 32) - 1020));
    // Below the window's bottom in subspace 0: taken as far ahead in subspace 1.
    assert_eq!(w.infer_esn(u32::MAX - 1020), Some((2u64 << 32) - 1021));
    // At the very end of the 64-bit space nothing can be ahead.
    w.reset_to(u64::MAX - 5);
    assert_eq!(w.infer_esn(u32::MAX), Some(u64::MAX));
    assert_eq!(w.infer_esn(3), None);
}
