// Values shared with C++: Python objects to and from msgpack, as C++'s
// loom::Serialize writes them. None, bool, int, float, str, bytes, lists
// (and tuples), dicts; a numpy array is a loom::Tensor (the kTensorExt
// extension), read back as an array over the value's bytes (no copy).
#include <cstring>
#include <string>

#include "bindings.h"
#include "loom/serialization.h"

namespace loom::py {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

constexpr int kMaxDepth = 512;

pyb::object Numpy() {
  static pyb::object* np =
      new pyb::object(pyb::module_::import("numpy"));  // kept for good
  return *np;
}

void PackArray(Packer& p, msgpack::sbuffer& out, const pyb::handle& obj) {
  pyb::object np = Numpy();
  pyb::object arr = np.attr("ascontiguousarray")(obj);
  pyb::object dtype = arr.attr("dtype");
  if (dtype.attr("hasobject").cast<bool>() || !dtype.attr("fields").is_none()) {
    throw pyb::type_error(
        "only numpy arrays of plain numbers cross to C++ (not object or "
        "structured dtypes)");
  }
  std::vector<int64_t> shape = arr.attr("shape").cast<std::vector<int64_t>>();
  pyb::buffer_info info = arr.cast<pyb::buffer>().request();
  size_t nbytes = static_cast<size_t>(info.size) * info.itemsize;
  Tensor t(pyb::str(dtype).cast<std::string>(), std::move(shape),
           Buffer(static_cast<const uint8_t*>(info.ptr), nbytes, nullptr));
  std::string prefix = internal::TensorExtPrefix(t, out.size());
  size_t n = prefix.size() + nbytes;
  if (n > UINT32_MAX) throw pyb::value_error("array too large for one value");
  p.pack_ext(n, internal::kTensorExt);
  p.pack_ext_body(prefix.data(), static_cast<uint32_t>(prefix.size()));
  p.pack_ext_body(static_cast<const char*>(info.ptr),
                  static_cast<uint32_t>(nbytes));
}

void Pack(Packer& p, msgpack::sbuffer& out, const pyb::handle& obj, int depth) {
  if (depth > kMaxDepth) throw pyb::value_error("value nested too deeply");
  PyObject* o = obj.ptr();
  if (o == Py_None) {
    p.pack_nil();
  } else if (PyBool_Check(o)) {
    o == Py_True ? p.pack_true() : p.pack_false();
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0) {
      p.pack_int64(v);
    } else {
      unsigned long long u = PyLong_AsUnsignedLongLong(o);
      if (PyErr_Occurred()) {
        PyErr_Clear();
        throw pyb::value_error("int does not fit in 64 bits for C++");
      }
      p.pack_uint64(u);
    }
  } else if (PyFloat_Check(o)) {
    p.pack_double(PyFloat_AS_DOUBLE(o));
  } else if (PyUnicode_Check(o)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == nullptr) throw pyb::error_already_set();
    p.pack_str(static_cast<uint32_t>(n));
    p.pack_str_body(s, static_cast<uint32_t>(n));
  } else if (PyBytes_Check(o) || PyByteArray_Check(o) ||
             PyMemoryView_Check(o)) {
    pyb::buffer_info info = pyb::reinterpret_borrow<pyb::buffer>(obj).request();
    if (!PyBuffer_IsContiguous(info.view(), 'C')) {
      throw pyb::value_error("a memoryview passed to C++ must be contiguous");
    }
    size_t n = static_cast<size_t>(info.size) * info.itemsize;
    p.pack_bin(static_cast<uint32_t>(n));
    p.pack_bin_body(static_cast<const char*>(info.ptr),
                    static_cast<uint32_t>(n));
  } else if (PyList_Check(o) || PyTuple_Check(o)) {
    pyb::sequence seq = pyb::reinterpret_borrow<pyb::sequence>(obj);
    p.pack_array(static_cast<uint32_t>(seq.size()));
    for (const auto& item : seq) Pack(p, out, item, depth + 1);
  } else if (PyDict_Check(o)) {
    pyb::dict d = pyb::reinterpret_borrow<pyb::dict>(obj);
    p.pack_map(static_cast<uint32_t>(d.size()));
    for (const auto& [k, v] : d) {
      Pack(p, out, k, depth + 1);
      Pack(p, out, v, depth + 1);
    }
  } else if (pyb::isinstance(obj, Numpy().attr("ndarray"))) {
    PackArray(p, out, obj);
  } else if (pyb::isinstance(obj, Numpy().attr("generic"))) {
    Pack(p, out, obj.attr("item")(), depth + 1);  // a numpy scalar
  } else {
    throw pyb::type_error(
        "cannot pass a " +
        pyb::str(pyb::type::handle_of(obj).attr("__name__"))
            .cast<std::string>() +
        " to C++: numbers, strings, bytes, lists, dicts and numpy arrays "
        "cross languages");
  }
}

pyb::object Unpack(const msgpack::object& o, const pyb::object& base,
                   const char* base_ptr, int depth);

pyb::object UnpackTensor(const msgpack::object& o, const pyb::object& base,
                         const char* base_ptr) {
  // A view of the payload, to find the elements (a holder that owns
  // nothing: the array holds `base` instead).
  Tensor t = internal::TensorFromExt(o.via.ext.data(), o.via.ext.size,
                                     std::make_shared<int>(0));
  pyb::object dtype = Numpy().attr("dtype")(t.dtype());
  size_t item = dtype.attr("itemsize").cast<size_t>();
  size_t count = item ? t.nbytes() / item : 0;
  if (item == 0 || count * item != t.nbytes()) {
    throw pyb::value_error("a tensor's bytes are not whole elements");
  }
  int64_t elements = 1;
  for (int64_t d : t.shape()) elements *= d;
  if (elements != static_cast<int64_t>(count)) {
    throw pyb::value_error("a tensor's shape does not match its bytes");
  }
  size_t offset = reinterpret_cast<const char*>(t.data()) - base_ptr;
  pyb::object arr = Numpy().attr("frombuffer")(base, pyb::arg("dtype") = dtype,
                                               pyb::arg("count") = count,
                                               pyb::arg("offset") = offset);
  return arr.attr("reshape")(pyb::cast(t.shape()));
}

pyb::object Unpack(const msgpack::object& o, const pyb::object& base,
                   const char* base_ptr, int depth) {
  if (depth > kMaxDepth) throw pyb::value_error("value nested too deeply");
  switch (o.type) {
    case msgpack::type::NIL:
      return pyb::none();
    case msgpack::type::BOOLEAN:
      return pyb::bool_(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER:
      return pyb::int_(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER:
      return pyb::int_(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return pyb::float_(o.via.f64);
    case msgpack::type::STR:
      return pyb::str(o.via.str.ptr, o.via.str.size);
    case msgpack::type::BIN:
      return pyb::bytes(o.via.bin.ptr, o.via.bin.size);
    case msgpack::type::ARRAY: {
      pyb::list out(o.via.array.size);
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        out[i] = Unpack(o.via.array.ptr[i], base, base_ptr, depth + 1);
      }
      return std::move(out);
    }
    case msgpack::type::MAP: {
      pyb::dict out;
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        pyb::object k = Unpack(o.via.map.ptr[i].key, base, base_ptr, depth + 1);
        if (pyb::isinstance<pyb::list>(k)) k = pyb::tuple(k);  // hashable
        out[k] = Unpack(o.via.map.ptr[i].val, base, base_ptr, depth + 1);
      }
      return std::move(out);
    }
    case msgpack::type::EXT:
      if (o.via.ext.type() == internal::kTensorExt) {
        return UnpackTensor(o, base, base_ptr);
      }
      throw pyb::value_error("unknown msgpack extension type " +
                             std::to_string(o.via.ext.type()));
  }
  throw pyb::value_error("unknown msgpack type");
}

pyb::bytes Dumps(const pyb::handle& obj) {
  msgpack::sbuffer out;
  Packer p(out);
  Pack(p, out, obj, 0);
  return pyb::bytes(out.data(), out.size());
}

// `data`: bytes or a memoryview; arrays in the value view it.
pyb::object Loads(const pyb::object& data) {
  pyb::buffer_info info = data.cast<pyb::buffer>().request();
  const char* ptr = static_cast<const char*>(info.ptr);
  size_t size = static_cast<size_t>(info.size) * info.itemsize;
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(ptr, size, &internal::ReferenceInPlace);
  } catch (const std::exception& e) {
    throw pyb::value_error(std::string("not a msgpack value: ") + e.what());
  }
  try {
    return Unpack(h.get(), data, ptr, 0);
  } catch (const Error& e) {
    throw pyb::value_error(e.what());
  }
}

}  // namespace

void BindMsgpack(pyb::module_& m) {
  m.def("msgpack_dumps", &Dumps, pyb::arg("value"));
  m.def("msgpack_loads", &Loads, pyb::arg("data"));
}

}  // namespace loom::py
