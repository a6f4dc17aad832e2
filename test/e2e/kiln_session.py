"""A thin ctypes binding of kiln's C runtime API (runtime/include/kiln/runtime.h) for
the tests: load an artifact, open sessions (sharing persistent state such as a KV
cache), set inputs by name, run, read outputs as numpy arrays. It calls the real
libkiln_runtime.so; nothing here computes a model."""
import ctypes

import numpy as np

_DTYPES = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}


class KilnError(RuntimeError):
    pass


class Runtime:
    def __init__(self, library, threads=0):
        lib = ctypes.CDLL(library)
        p, size = ctypes.c_void_p, ctypes.c_size_t
        lib.kiln_status_message.restype = ctypes.c_char_p
        lib.kiln_status_message.argtypes = [p]
        lib.kiln_status_free.argtypes = [p]
        for name, args in {
            "kiln_runtime_create": [p, ctypes.POINTER(p)],
            "kiln_module_load_file": [p, ctypes.c_char_p, ctypes.POINTER(p)],
            "kiln_module_find_entry_point": [p, ctypes.c_char_p, ctypes.POINTER(size)],
            "kiln_session_create_sharing_state": [p, size, p, ctypes.POINTER(p)],
            "kiln_session_set_input_by_name": [p, ctypes.c_char_p, p, size],
            "kiln_session_run": [p],
            "kiln_session_output": [p, size, ctypes.POINTER(p), ctypes.POINTER(size)],
        }.items():
            getattr(lib, name).restype = p
            getattr(lib, name).argtypes = args
        for name in ("kiln_runtime_release", "kiln_module_release", "kiln_session_release"):
            getattr(lib, name).argtypes = [p]
        self.lib = lib

        # runtime.h's kiln_runtime_options, field for field (device NULL: the CPU).
        class Options(ctypes.Structure):
            _fields_ = [("num_threads", ctypes.c_int32), ("device", ctypes.c_char_p)]

        handle = ctypes.c_void_p()
        self.check(lib.kiln_runtime_create(ctypes.byref(Options(threads, None)),
                                           ctypes.byref(handle)))
        self.handle = handle

    def check(self, status):
        if status:
            message = self.lib.kiln_status_message(status).decode()
            self.lib.kiln_status_free(status)
            raise KilnError(message)

    def load(self, path):
        return Module(self, path)


class Module:
    def __init__(self, runtime, path):
        self.rt, handle = runtime, ctypes.c_void_p()
        runtime.check(runtime.lib.kiln_module_load_file(runtime.handle, path.encode(),
                                                        ctypes.byref(handle)))
        self.handle = handle

    def session(self, entry, sharing_state_with=None):
        return Session(self, entry, sharing_state_with)


class Session:
    def __init__(self, module, entry, owner):
        self.module, rt = module, module.rt
        index, handle = ctypes.c_size_t(), ctypes.c_void_p()
        rt.check(rt.lib.kiln_module_find_entry_point(module.handle, entry.encode(),
                                                     ctypes.byref(index)))
        rt.check(rt.lib.kiln_session_create_sharing_state(
            module.handle, index, owner.handle if owner else None, ctypes.byref(handle)))
        self.handle = handle

    def run(self, outputs, **inputs):
        """Sets the named inputs, runs, returns copies of outputs given as
        {index: (dtype, shape)}."""
        rt = self.module.rt
        for name, value in inputs.items():
            array = np.ascontiguousarray(value)
            assert array.dtype in _DTYPES, array.dtype
            rt.check(rt.lib.kiln_session_set_input_by_name(
                self.handle, name.encode(), array.ctypes.data, array.nbytes))
        rt.check(rt.lib.kiln_session_run(self.handle))
        results = []
        for index, (dtype, shape) in outputs.items():
            data, size = ctypes.c_void_p(), ctypes.c_size_t()
            rt.check(rt.lib.kiln_session_output(self.handle, index, ctypes.byref(data),
                                                ctypes.byref(size)))
            expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
            if size.value != expected:
                raise KilnError(f"output {index} has {size.value} bytes, expected {expected}")
            buffer = (ctypes.c_char * size.value).from_address(data.value)
            results.append(np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape))
        return results
