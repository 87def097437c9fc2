//! A short run of the chaos soak (`make chaos` runs the long one): worker processes are killed at
//! random points and restarted, and the books must still balance.

#[test]
fn chaos_soak_short_run_loses_nothing_and_applies_nothing_twice() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["--orders", "80", "--workers", "2", "--kill-rate", "0.05"])
        .output()
        .expect("run the chaos binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("chaos: 80 orders, 0 lost, 0 double-applied"),
        "{stdout}"
    );
    println!("{stdout}");
}
