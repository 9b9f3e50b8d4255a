//! Runs the trybuild cases: `pass/` must compile, `fail/` must fail with
//! the errors recorded in the `.stderr` beside each case.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/fail/*.rs");
}
