//! CSV time series (echos-host `csv_table`): any bytes give a table or a typed error, and a
//! table written back out parses to the same bits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    if let Ok(table) = echos_host::csv_table::parse(data) {
        assert_eq!(table.data().len(), table.rows() * table.cols());
        let text = echos_host::csv_table::to_string(&table);
        let again = echos_host::csv_table::parse(text.as_bytes()).expect("our own CSV parses");
        assert_eq!((again.rows(), again.cols()), (table.rows(), table.cols()));
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(again.data()), bits(table.data()));
    }
}
