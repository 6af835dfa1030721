//! A bounded evaluator for the pickle inside a PyTorch checkpoint (`data.pkl`): the opcodes
//! `torch.save` emits (protocols 2–5, binary forms), and nothing is executed — a global is a
//! name, and only the calls a state dict is built from mean anything
//! (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, `collections.OrderedDict`).
//!
//! Resource rule: the memo and the stack share values by reference (`Rc`), so `BINGET` costs
//! O(1) and every opcode adds at most one value of bounded size; memory and time are linear in
//! the pickle's length. Every length field is checked against the bytes left before anything
//! is allocated from it. Replaces `repugnant-pickle`, which deep-copied memoised values (a
//! 216-byte pickle reached 5.8 GB) and panicked on `MARK OBJ`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// What is wrong with a pickle, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {pos}: {what}")]
pub struct PickleError {
    pub pos: usize,
    pub what: String,
}

/// A storage named by a persistent id `('storage', torch.XStorage, key, location, numel)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// The storage class name, e.g. `FloatStorage`.
    pub dtype: String,
    /// The archive member `data/<key>` that holds its bytes.
    pub key: String,
    /// Elements in the storage.
    pub numel: u64,
}

/// A tensor view `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, in elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

#[derive(Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes,
    Tuple(Rc<[Value]>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    /// The result of any call we do not model: kept as an opaque placeholder.
    Object,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "a bool",
            Value::Int(_) => "an int",
            Value::Float => "a float",
            Value::Str(_) => "a str",
            Value::Bytes => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
            Value::Object => "an object",
        }
    }
}

/// Every `(name, tensor)` entry of the dicts reachable from the pickled object, in pickle
/// order (a state dict, an `OrderedDict`, or dicts nested inside either).
pub fn torch_tensors(pickle: &[u8]) -> Result<Vec<(String, TensorRef)>, PickleError> {
    let top = Machine::new(pickle).run()?;
    Ok(collect_tensors(&top))
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where the current opcode started, for error messages.
    op_pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Machine {
            bytes,
            pos: 0,
            op_pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn err<T>(&self, what: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            pos: self.op_pos,
            what: what.into(),
        })
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], PickleError> {
        let left = self.bytes.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let s = &self.bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(s)
            }
            _ => self.err(format!("needs {n} more bytes, the pickle has {left}")),
        }
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes taken")))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.bytes[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("unterminated text line");
        };
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).or_else(|_| self.err("text line is not UTF-8"))
    }

    fn text(&mut self, n: u64) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Value::Str(Rc::from(s))),
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    /// Little-endian two's-complement integer of `n` bytes, as Python's LONG1/LONG4.
    fn long(&mut self, n: u64) -> Result<Value, PickleError> {
        if n > 8 {
            return self.err(format!("integer of {n} bytes is too large"));
        }
        let b = self.take(n)?;
        let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
            [0xff; 8]
        } else {
            [0; 8]
        };
        buf[..b.len()].copy_from_slice(b);
        Ok(Value::Int(i64::from_le_bytes(buf)))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return self.err("the stack is empty above the mark");
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err("the stack is empty"),
        }
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("the stack is empty");
        }
        Ok(self.stack.last_mut().expect("checked non-empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        match self.marks.pop() {
            Some(m) => Ok(self.stack.split_off(m)),
            None => self.err("no MARK to pop to"),
        }
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => self.err(format!("memo entry {key} was never stored")),
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        while self.pos < self.bytes.len() {
            self.op_pos = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let v = self.u8()?;
                    if v > 5 {
                        return self.err(format!("pickle protocol {v} (known: 0-5)"));
                    }
                }
                0x95 => {
                    // FRAME: a length hint for buffered readers; the data follows inline.
                    self.u64()?;
                }
                b'.' => {
                    // STOP
                    return self.pop();
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool),
                0x89 => self.stack.push(Value::Bool),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = self.u8()?;
                    let v = self.long(u64::from(n))?;
                    self.stack.push(v);
                }
                0x8b => {
                    let n = self.u32()?;
                    let v = self.long(u64::from(n))?;
                    self.stack.push(v);
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                b'X' => {
                    let n = self.u32()?;
                    let v = self.text(u64::from(n))?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.u8()?;
                    let v = self.text(u64::from(n))?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.u64()?;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                b'T' | b'U' => {
                    // BINSTRING / SHORT_BINSTRING (Python 2 str): text if it decodes.
                    let n = if op == b'T' {
                        u64::from(self.u32()?)
                    } else {
                        u64::from(self.u8()?)
                    };
                    let b = self.take(n)?;
                    let v = match std::str::from_utf8(b) {
                        Ok(s) => Value::Str(Rc::from(s)),
                        Err(_) => Value::Bytes,
                    };
                    self.stack.push(v);
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                    let n = match op {
                        b'B' => u64::from(self.u32()?),
                        b'C' => u64::from(self.u8()?),
                        _ => self.u64()?,
                    };
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                b')' => self.stack.push(Value::Tuple(Rc::from(Vec::new()))),
                b']' => self.stack.push(Value::List(Rc::default())),
                b'}' => self.stack.push(Value::Dict(Rc::default())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::from(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Value::Tuple(Rc::from(items)));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.stack.push(Value::Dict(Rc::new(RefCell::new(pairs))));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.set_items(pairs)?;
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(u32::from(k))?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    // MEMOIZE: the next free index.
                    let k = u32::try_from(self.memo.len()).or_else(|_| self.err("memo full"))?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(u32::from(k))?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.stack.push(Value::Global(Rc::new((module, name))));
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return self.err("STACK_GLOBAL needs two strings");
                    };
                    let g = (module.to_string(), name.to_string());
                    self.stack.push(Value::Global(Rc::new(g)));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let s = self.storage(&pid)?;
                    self.stack.push(Value::Storage(Rc::new(s)));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(&callable, &args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.call(&cls, &args)?;
                    self.stack.push(v);
                }
                b'o' => {
                    // OBJ: MARK cls args... OBJ
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return self.err("OBJ without a class after its MARK");
                    }
                    let cls = items.remove(0);
                    let args = Value::Tuple(Rc::from(items));
                    let v = self.call(&cls, &args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD sets attributes (e.g. a state dict's `_metadata`): not needed.
                    self.pop()?;
                    self.top()?;
                }
                _ => {
                    return self.err(format!(
                        "unsupported pickle opcode {:?} (0x{op:02x})",
                        op as char
                    ))
                }
            }
        }
        self.err("the pickle ends without STOP")
    }

    fn pairs(&self, items: Vec<Value>) -> Result<Vec<(Value, Value)>, PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.err("odd number of items for a dict");
        }
        let mut it = items.into_iter();
        let mut out = Vec::with_capacity(it.len() / 2);
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        match self.top()? {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => {
                let k = other.kind();
                self.err(format!("APPEND to {k}, not a list"))
            }
        }
    }

    fn set_items(&mut self, pairs: Vec<(Value, Value)>) -> Result<(), PickleError> {
        match self.top()? {
            Value::Dict(d) => {
                d.borrow_mut().extend(pairs);
                Ok(())
            }
            other => {
                let k = other.kind();
                self.err(format!("SETITEM on {k}, not a dict"))
            }
        }
    }

    /// `('storage', torch.FloatStorage, '0', 'cpu', 1024)`.
    fn storage(&self, pid: &Value) -> Result<StorageRef, PickleError> {
        let Value::Tuple(t) = pid else {
            return self.err(format!("persistent id is {}, not a tuple", pid.kind()));
        };
        match &t[..] {
            [Value::Str(tag), Value::Global(g), key, _location, Value::Int(numel)]
                if &**tag == "storage" =>
            {
                let key = match key {
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    other => {
                        return self.err(format!("storage key is {}, not a str", other.kind()))
                    }
                };
                let numel = u64::try_from(*numel)
                    .or_else(|_| self.err(format!("storage `{key}` has {numel} elements")))?;
                if g.0 != "torch" {
                    return self.err(format!("storage type {}.{} is not torch's", g.0, g.1));
                }
                Ok(StorageRef {
                    dtype: g.1.clone(),
                    key,
                    numel,
                })
            }
            _ => self.err("persistent id is not ('storage', type, key, location, numel)"),
        }
    }

    fn call(&self, callable: &Value, args: &Value) -> Result<Value, PickleError> {
        let Value::Global(g) = callable else {
            return self.err(format!("call of {}, not a global", callable.kind()));
        };
        let Value::Tuple(args) = args else {
            return self.err(format!("arguments are {}, not a tuple", args.kind()));
        };
        match (g.0.as_str(), g.1.as_str()) {
            ("torch._utils", "_rebuild_tensor_v2") => self.rebuild_tensor(args),
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match args.first() {
                    Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                    _ => self.err("_rebuild_parameter without a tensor"),
                }
            }
            ("collections", "OrderedDict") => {
                let pairs = match args.first() {
                    None => Vec::new(),
                    Some(Value::List(l)) => {
                        let l = l.borrow();
                        let mut out = Vec::with_capacity(l.len());
                        for item in l.iter() {
                            match item {
                                Value::Tuple(kv) if kv.len() == 2 => {
                                    out.push((kv[0].clone(), kv[1].clone()))
                                }
                                _ => return self.err("OrderedDict item is not a pair"),
                            }
                        }
                        out
                    }
                    Some(other) => {
                        return self.err(format!("OrderedDict of {}", other.kind()));
                    }
                };
                Ok(Value::Dict(Rc::new(RefCell::new(pairs))))
            }
            _ => Ok(Value::Object),
        }
    }

    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value, PickleError> {
        let [Value::Storage(s), Value::Int(offset), size, stride, ..] = args else {
            return self
                .err("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)");
        };
        let ints = |v: &Value, what: &str| -> Result<Vec<u64>, PickleError> {
            let Value::Tuple(t) = v else {
                return self.err(format!("tensor {what} is {}, not a tuple", v.kind()));
            };
            t.iter()
                .map(|x| match x {
                    Value::Int(n) if *n >= 0 => Ok(*n as u64),
                    _ => self.err(format!("tensor {what} holds {}", x.kind())),
                })
                .collect()
        };
        let offset =
            u64::try_from(*offset).or_else(|_| self.err(format!("tensor offset {offset}")))?;
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage: (**s).clone(),
            offset,
            shape: ints(size, "size")?,
            stride: ints(stride, "stride")?,
        })))
    }
}

/// Walks the containers reachable from `top` once each (shared or cyclic ones included) and
/// collects the `str -> tensor` entries of every dict.
fn collect_tensors(top: &Value) -> Vec<(String, TensorRef)> {
    let mut out = Vec::new();
    let mut seen: HashSet<*const ()> = HashSet::new();
    let mut todo = vec![top.clone()];
    while let Some(v) = todo.pop() {
        let id = match &v {
            Value::Tuple(t) => Rc::as_ptr(t) as *const (),
            Value::List(l) => Rc::as_ptr(l) as *const (),
            Value::Dict(d) => Rc::as_ptr(d) as *const (),
            _ => continue,
        };
        if !seen.insert(id) {
            continue;
        }
        match v {
            Value::Tuple(t) => todo.extend(t.iter().rev().cloned()),
            Value::List(l) => todo.extend(l.borrow().iter().rev().cloned()),
            Value::Dict(d) => {
                let d = d.borrow();
                for (k, val) in d.iter() {
                    if let (Value::Str(name), Value::Tensor(t)) = (k, val) {
                        out.push((name.to_string(), (**t).clone()));
                    }
                }
                todo.extend(d.iter().rev().map(|(_, val)| val.clone()));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The opcodes `torch.save` writes for `{'w': tensor}`: a float tensor of shape (2, 3)
    /// with stride (3, 1) in storage '0' of 6 elements.
    fn state_dict_pickle() -> Vec<u8> {
        b"\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x06tq\x07QK\x00K\x02K\x03\x86q\x08K\x03K\x01\x86q\x09\x89ccollections\nOrderedDict\nq\x0a)Rq\x0btq\x0cRq\x0du.".to_vec()
    }

    #[test]
    fn reads_a_state_dict_as_torch_writes_it() {
        let t = torch_tensors(&state_dict_pickle()).unwrap();
        assert_eq!(t.len(), 1);
        let (name, t) = &t[0];
        assert_eq!(name, "w");
        assert_eq!(
            t,
            &TensorRef {
                storage: StorageRef {
                    dtype: "FloatStorage".into(),
                    key: "0".into(),
                    numel: 6
                },
                offset: 0,
                shape: vec![2, 3],
                stride: vec![3, 1],
            }
        );
    }

    #[test]
    fn mark_then_obj_is_an_error_not_a_panic() {
        let e = torch_tensors(b"\x80\x02(o.").unwrap_err();
        assert!(e.what.contains("OBJ without a class"), "{e}");
        for bad in [
            &b""[..],
            b"\x80\x02",
            b"\x80\x02.",
            b"\x80\x02t.",
            b"\x80\x02(\x85.",
            b"\x80\x02h\x05.",
            b"\x80\x02X\xff\xff\xff\xff",
            b"\x80\x02\x8a\x10aaaaaaaaaaaaaaaa.",
            b"\x80\x02K\x01K\x02s.",
            b"\x80\x02]K\x01K\x02u.",
            b"\x80\x02cmod\n",
            b"\x80\x02N)R.",
            b"\x80\x02}(K\x01u.",
            b"\x80\x02(1.",
            b"\x80\x02\x93.",
            b"\x80\x02I1\n.",
            b"\x80\x09N.",
        ] {
            assert!(torch_tensors(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memo_sharing_is_linear_in_time_and_memory() {
        // h i h i TUPLE2 q i+1, 30 times: each level pairs the previous one with itself, a
        // value 2^30 leaves wide if copied; by reference it is 30 small tuples.
        let mut p = b"\x80\x02N".to_vec();
        p.extend_from_slice(b"q\x00");
        for i in 0u8..30 {
            p.extend_from_slice(&[b'h', i, b'h', i, 0x86, b'q', i + 1]);
        }
        p.push(b'.');
        assert_eq!(p.len(), 216);
        let t0 = std::time::Instant::now();
        assert_eq!(torch_tensors(&p).unwrap(), vec![]);
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));

        // A list that contains itself is walked once.
        let cyclic = b"\x80\x02]q\x00h\x00a.";
        assert_eq!(torch_tensors(cyclic).unwrap(), vec![]);
    }

    #[test]
    fn nested_and_ordered_dicts_and_parameters_are_found() {
        // {'model': OrderedDict([('a', _rebuild_parameter(tensor, True, OrderedDict()))])}
        let tensor = b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x001X\x03\x00\x00\x00cpuK\x04tQK\x01K\x03\x85K\x01\x85\x89)tR";
        let mut p = b"\x80\x02}X\x05\x00\x00\x00modelccollections\nOrderedDict\n)R".to_vec();
        p.extend_from_slice(b"X\x01\x00\x00\x00actorch._utils\n_rebuild_parameter\n(");
        p.extend_from_slice(tensor);
        p.extend_from_slice(b"\x88)tRss.");
        let t = torch_tensors(&p).unwrap();
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].0, "a");
        assert_eq!(t[0].1.storage.dtype, "HalfStorage");
        assert_eq!((t[0].1.offset, &t[0].1.shape[..]), (1, &[3u64][..]));
    }
}
