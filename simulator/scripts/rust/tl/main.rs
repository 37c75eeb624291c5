fn main() {
    let mut spins: u64 = 0;
    loop {
        unsafe { std::ptr::write_volatile(&mut spins, spins + 1) };
    }
}
