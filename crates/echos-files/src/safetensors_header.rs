//! Deterministic safetensors files. `safetensors::serialize` takes the metadata as a `HashMap`,
//! whose iteration order changes from run to run, so the same tensors and metadata would give
//! different bytes each time. [`canonical`] rewrites the JSON header with every object's keys
//! sorted (after an optional edit, e.g. filling in a checksum placeholder of fixed width),
//! keeping the header's length and space padding, so the tensor offsets stay valid.

/// Rewrites the header of serialized safetensors `bytes` with sorted keys, after `edit` (which
/// must not lengthen it). Errors name what was wrong with the bytes or the edit.
pub fn canonical(
    mut bytes: Vec<u8>,
    edit: impl FnOnce(&mut serde_json::Value, &[u8]) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let len: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("no length prefix")?;
    let n = usize::try_from(u64::from_le_bytes(len)).map_err(|e| e.to_string())?;
    let end = n.checked_add(8).ok_or("header length overflows")?;
    let header = bytes.get(8..end).ok_or("header runs past the end")?;
    let mut value: serde_json::Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    edit(&mut value, &bytes[end..])?;
    sort_keys(&mut value);
    let mut text = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    if text.len() > n {
        return Err(format!("header grew from {n} to {} bytes", text.len()));
    }
    text.resize(n, b' ');
    bytes[8..end].copy_from_slice(&text);
    Ok(bytes)
}

fn sort_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn keys_are_sorted_and_length_kept() {
        let a = file(r#"{"b":{"y":"1","x":"2"},"a":[{"k":1,"j":2}]}  "#, b"DATA");
        let out = canonical(a.clone(), |_, data| {
            assert_eq!(data, b"DATA");
            Ok(())
        })
        .unwrap();
        assert_eq!(out.len(), a.len());
        assert_eq!(
            &out[8..out.len() - 4],
            br#"{"a":[{"j":2,"k":1}],"b":{"x":"2","y":"1"}}  "#
        );
        assert_eq!(&out[out.len() - 4..], b"DATA");
    }

    #[test]
    fn bad_bytes_and_growing_edits_are_errors() {
        assert!(canonical(vec![1, 2], |_, _| Ok(())).is_err());
        assert!(canonical(file("{", b""), |_, _| Ok(())).is_err());
        let mut f = file("{}", b"");
        f[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(canonical(f, |_, _| Ok(())).is_err());
        let grow = canonical(file(r#"{"a":"1"}"#, b""), |v, _| {
            v["a"] = serde_json::Value::String("longer".into());
            Ok(())
        });
        assert!(grow.unwrap_err().contains("grew"));
    }
}
