//! `.npy` bytes through every reader that takes them: the workspace's one parser (echos-npy),
//! the host's time-series reader and RWKV's token and logit readers. A file that parses must
//! decode to exactly the values its shape names, and an f8 array must write back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    if let Ok(npy) = echos_npy::Npy::parse(data) {
        let len = npy.shape().iter().product::<usize>();
        assert_eq!(npy.len(), len);
        let values = npy.to_f64();
        assert_eq!(values.len(), len);
        if let Ok(f) = npy.to_f32() {
            assert_eq!(f.len(), len);
        }
        if let Ok(ints) = npy.ints() {
            assert_eq!(ints.count(), len);
        }
        if npy.dtype() == echos_npy::Dtype::F8 && !npy.fortran_order() {
            let bytes = echos_npy::to_bytes_f64(npy.shape(), &values).expect("shape holds them");
            let again = echos_npy::Npy::parse(&bytes).expect("our own file parses");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&again.to_f64()), bits(&values));
            assert_eq!(again.shape(), npy.shape());
        }
    }
    let _ = echos_host::npy::parse(data);
    let _ = echos_rwkv_io::npy::tokens_from_npy_bytes(data, "fuzz.npy");
    let _ = echos_rwkv_io::npy::f32_from_npy_bytes(data, "fuzz.npy");
}
