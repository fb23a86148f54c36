//! Every command's exit codes and output, as data: one `tests/cmd/*.toml` per case (args,
//! expected status, stdout/stderr with `...` and `[..]` wildcards); `*.in/` folders are the
//! input trees of the cases that write (copied to a sandbox first).

#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .case("tests/cmd/*.toml")
        .env("NO_COLOR", "1");
}
