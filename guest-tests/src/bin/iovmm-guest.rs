//! `iovmm-guest`: the guest's /init. Runs the scenario's tests and reports KTAP v1 on the console, then ends
//! the VM through the exit device. See `guest_tests::guest`.

fn main() {
    guest_tests::guest::init::main()
}
