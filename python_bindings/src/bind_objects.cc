// Objects from Python: ObjectRef, put, get (zero copy from the store),
// wait, and the borrowing of refs that arrive inside values.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bindings.h"
#include "object_store/layout.h"

namespace loom::py {

CoreWorker& Core() {
  CoreWorker* cw = GlobalCoreWorker();
  if (cw == nullptr) {
    throw std::runtime_error("Loom is not initialized: call loom.init()");
  }
  return *cw;
}

PyObjectRef::PyObjectRef(ObjectId id, std::string owner)
    : id_(std::move(id)), owner_(std::move(owner)) {
  if (CoreWorker* cw = GlobalCoreWorker()) {
    cw->AddRef(id_);
    counted_by_ = cw->incarnation();
  }
}

PyObjectRef::~PyObjectRef() {
  if (counted_by_ == 0) return;
  CoreWorker* cw = GlobalCoreWorker();
  if (cw != nullptr && cw->incarnation() == counted_by_) cw->RemoveRef(id_);
}

std::string PyObjectRef::owner() const {
  if (!owner_.empty()) return owner_;
  CoreWorker* cw = GlobalCoreWorker();
  return cw ? cw->OwnerOf(id_) : "";
}

[[noreturn]] void ThrowStatus(const absl::Status& s) {
  std::string msg(s.message());
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      throw pyb::value_error(msg);
    case absl::StatusCode::kResourceExhausted:
      throw pyb::buffer_error("ObjectStoreFull: " + msg);
    case absl::StatusCode::kAborted:
      throw pyb::index_error("PendingCallsLimitExceeded: " + msg);
    case absl::StatusCode::kNotFound:
      throw pyb::key_error(msg);
    default:
      throw std::runtime_error(msg);
  }
}

pyb::tuple ErrorTuple(const rpc::ErrorInfo& e) {
  return pyb::make_tuple(static_cast<int>(e.kind()), e.type(), e.message(),
                         e.task_name(), pyb::bytes(e.data()));
}

Serialized ViewSerialized(const pyb::handle& metadata,
                          const pyb::handle& buffers) {
  Serialized out;
  out.metadata = metadata.cast<std::string_view>();
  out.size = out.metadata.size();
  for (const auto& b : buffers.cast<pyb::list>()) {
    out.infos.push_back(b.cast<pyb::buffer>().request());
    const auto& info = out.infos.back();
    if (!PyBuffer_IsContiguous(info.view(), 'A')) {
      throw pyb::value_error("out-of-band buffers must be contiguous");
    }
    out.buffers.emplace_back(static_cast<const char*>(info.ptr),
                             info.size * info.itemsize);
    out.size += out.buffers.back().size();
  }
  return out;
}

pyb::tuple ParseObject(const Pinned& pinned) {
  auto layout =
      ParseLayout(reinterpret_cast<const uint8_t*>(pinned.data), pinned.size);
  if (!layout.ok() &&
      (pinned.size < 4 || std::memcmp(pinned.data, "LOOM", 4) != 0)) {
    pyb::list buffers;
    buffers.append(pyb::memoryview(pyb::cast(pinned)));
    return pyb::make_tuple(static_cast<int>(Format::kMsgpack), pyb::bytes(),
                           buffers);
  }
  if (!layout.ok()) {
    throw pyb::value_error(
        absl::StrCat("not a Loom object: ", layout.status().message()));
  }
  pyb::list buffers;
  for (const auto& b : layout->buffers) {
    // Each buffer view owns a Pinned (sharing the holder) through its base
    // object, so the store pin lasts as long as any view of it.
    pyb::object base = pyb::cast(Pinned{b.data(), b.size(), pinned.holder});
    buffers.append(pyb::memoryview(base));
  }
  return pyb::make_tuple(
      static_cast<int>(layout->format),
      pyb::bytes(layout->metadata.data(), layout->metadata.size()), buffers);
}

namespace {

std::vector<ObjectId> Ids(const std::vector<PyObjectRef*>& refs) {
  std::vector<ObjectId> ids;
  ids.reserve(refs.size());
  for (auto* r : refs) {
    if (r == nullptr) throw pyb::type_error("expected an ObjectRef, got None");
    ids.push_back(r->id());
  }
  return ids;
}

// The contained refs of a value: one reference each, now the runtime's.
std::vector<ObjectId> Take(const std::vector<PyObjectRef*>& refs) {
  std::vector<ObjectId> ids = Ids(refs);
  for (const ObjectId& id : ids) Core().AddRef(id);
  return ids;
}

std::shared_ptr<PyObjectRef> Put(pyb::bytes metadata, pyb::list buffers,
                                 std::vector<PyObjectRef*> contained) {
  Serialized value = ViewSerialized(metadata, buffers);
  std::vector<ObjectId> inner = Take(contained);
  absl::StatusOr<ObjectId> id;
  {
    pyb::gil_scoped_release release;  // copies large buffers
    id = Core().PutLayout(Format::kPickle5, value.metadata, value.buffers,
                          inner);
  }
  if (!id.ok()) {
    for (const ObjectId& i : inner) Core().RemoveRef(i);
    ThrowStatus(id.status());
  }
  return std::make_shared<PyObjectRef>(*id, "");
}

// Per ref: ("ok", (format, metadata, buffers)) or ("err", error tuple).
pyb::object Get(std::vector<PyObjectRef*> refs, int64_t timeout_ms) {
  std::vector<ObjectId> ids = Ids(refs);
  // Slices (for Ctrl-C) of one wait that resumes where the last stopped;
  // once all are ready (later slices pass at once), the values.
  ObjectTable::Progress progress;
  auto results = WaitInterruptibly<std::vector<CoreWorker::LayoutResult>>(
      timeout_ms,
      [&](int64_t slice)
          -> std::optional<std::vector<CoreWorker::LayoutResult>> {
        if (!Core().WaitReady(ids, &progress, slice)) return std::nullopt;
        return Core().GetLayouts(ids, slice);
      });
  if (!results) return pyb::none();
  pyb::list out;
  for (auto& r : *results) {
    if (r.error) {
      out.append(pyb::make_tuple(false, ErrorTuple(*r.error)));
    } else {
      out.append(pyb::make_tuple(
          true, ParseObject(Pinned{r.bytes.data(), r.bytes.size(),
                                   std::move(r.holder)})));
    }
  }
  return out;
}

std::vector<bool> Wait(std::vector<PyObjectRef*> refs, int num_returns,
                       int64_t timeout_ms) {
  std::vector<ObjectId> ids = Ids(refs);
  if (num_returns < 0 || static_cast<size_t>(num_returns) > ids.size()) {
    throw pyb::value_error(
        "num_returns must be between 0 and the number of refs");
  }
  std::vector<bool> last;
  auto done = WaitInterruptibly<std::vector<bool>>(
      timeout_ms, [&](int64_t slice) -> std::optional<std::vector<bool>> {
        last = Core().Wait(ids, num_returns, slice);
        int n = 0;
        for (bool b : last) n += b;
        if (n >= num_returns) return last;
        return std::nullopt;
      });
  return done ? *done : last;
}

}  // namespace

void BindObjects(pyb::module_& m) {
  pyb::class_<Pinned>(m, "Pinned", pyb::buffer_protocol())
      .def_buffer([](Pinned& p) {
        return pyb::buffer_info(const_cast<char*>(p.data), 1,
                                pyb::format_descriptor<uint8_t>::format(), 1,
                                {static_cast<pyb::ssize_t>(p.size)}, {1},
                                /*readonly=*/true);
      });

  pyb::class_<PyObjectRef, std::shared_ptr<PyObjectRef>>(m, "ObjectRef")
      .def(pyb::init([](pyb::bytes id, std::string owner) {
             auto parsed = ObjectId::FromBinary(std::string(id));
             if (!parsed.ok()) throw pyb::value_error("bad object id");
             return std::make_shared<PyObjectRef>(*parsed, std::move(owner));
           }),
           pyb::arg("id"), pyb::arg("owner") = "")
      .def("binary",
           [](const PyObjectRef& r) { return pyb::bytes(r.id().Binary()); })
      .def("hex", [](const PyObjectRef& r) { return r.id().Hex(); })
      .def("owner_address", &PyObjectRef::owner)
      .def("task_id", [](const PyObjectRef& r) { return r.id().Task().Hex(); })
      .def("__eq__",
           [](const PyObjectRef& a, const PyObjectRef* b) {
             return b != nullptr && a.id() == b->id();
           })
      .def("__hash__",
           [](const PyObjectRef& r) {
             return static_cast<pyb::ssize_t>(absl::HashOf(r.id()));
           })
      .def("__repr__", [](const PyObjectRef& r) {
        return absl::StrCat("ObjectRef(", r.id().Hex(), ")");
      });

  m.def("put", &Put, pyb::arg("metadata"), pyb::arg("buffers"),
        pyb::arg("contained"));
  m.def("get", &Get, pyb::arg("refs"), pyb::arg("timeout_ms"));
  m.def("wait", &Wait, pyb::arg("refs"), pyb::arg("num_returns"),
        pyb::arg("timeout_ms"));
  // Borrowing: a ref deserialized from a value. True when this process
  // must register with the owner (register_borrows, batched).
  m.def("borrow", [](pyb::bytes id, const std::string& owner) {
    auto parsed = ObjectId::FromBinary(std::string(id));
    if (!parsed.ok()) throw pyb::value_error("bad object id in a value");
    return Core().Borrow(*parsed, owner);
  });
  m.def("register_borrows",
        [](std::vector<std::pair<pyb::bytes, std::string>> borrows) {
          std::vector<std::pair<ObjectId, std::string>> parsed;
          for (auto& [id, owner] : borrows) {
            auto p = ObjectId::FromBinary(std::string(id));
            if (p.ok()) parsed.emplace_back(*p, owner);
          }
          pyb::gil_scoped_release release;
          Core().RegisterBorrows(parsed);
        });
  m.def("store_mapping", []() {
    // (start address, size) of this process's mapping of the store.
    auto m = Core().StoreMapping();
    return pyb::make_tuple(m.first, m.second);
  });
}

}  // namespace loom::py
