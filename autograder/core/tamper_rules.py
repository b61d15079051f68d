"""What the source scan (``tamper.py``) looks for: the grader's names, modules and attributes that are
escape hatches, and the calls that reach them. Tables only; the scan's logic is in ``tamper.py``."""
import re

GRADER_MODULES = frozenset({
    "student_side", "probes", "train_probe", "session", "worker", "wire", "loader", "autograder", "bnlab_public",
    "architectures", "synthetic_data", "sandbox", "training_ref", "recompute", "oracle", "runner", "tamper",
    "op_trace", "device_probe", "block_layers", "diagnosis", "shape_tables"})   # (the key: through `autograder`)
# names distinctive enough to flag wherever they appear (a variable called `loader` is fine)
GRADER_NAMES = frozenset({"student_side", "train_probe", "autograder", "bnlab_public", "NormOpWatch", "PROBES",
                          "op_trace"})
FORBIDDEN_MODULES = {
    "gc": "the garbage collector (it hands out every live object, the grader's included)",
    "ctypes": "ctypes (raw memory access)", "_ctypes": "ctypes (raw memory access)",
    "cffi": "cffi (raw memory access)", "runpy": "runpy (running code by name)",
    "torch._C": "PyTorch's C internals (torch._C)",
    "torch.utils._python_dispatch": "PyTorch's dispatch modes (torch.utils._python_dispatch)",
    "torch.overrides": "PyTorch's function modes (torch.overrides)",
    "torch._dispatch": "PyTorch's dispatch internals", "torch._ops": "PyTorch's operator internals",
    "torch._subclasses": "PyTorch's tensor-subclass internals",
    "torch.library": "PyTorch's operator registration (torch.library: kernels the grader cannot see into)",
    "torch._library": "PyTorch's operator registration", "torch._custom_ops": "PyTorch's operator registration",
    "signal": "signal handlers (code run in the middle of the grader's code)",
    "fcntl": "fcntl (raw file descriptors: the worker's answer channel)",
    "mmap": "mmap (raw memory and file descriptors)",
    "pdb": "the debugger (frames of the grader's code)", "bdb": "the debugger (frames of the grader's code)",
}
# attributes that are interpreter internals wherever they appear
ALWAYS_FRAME_ATTRS = frozenset({
    "_getframe", "_current_frames", "currentframe", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
    "f_trace", "tb_frame", "tb_next", "gi_frame", "cr_frame", "ag_frame", "__globals__", "__code__", "__closure__",
    "__subclasses__", "__builtins__", "addaudithook", "_clear_type_cache", "get_objects", "get_referrers",
    "get_referents", "walk_stack", "walk_tb", "custom_op", "load_library"})
# attributes that are internals only on these modules (torch.stack and net.modules() are fine)
OWNED_ATTRS = {
    "sys": {"modules", "meta_path", "path_hooks", "path_importer_cache", "settrace", "setprofile", "monitoring",
            "setswitchinterval"},
    "inspect": {"stack", "trace", "getouterframes", "getinnerframes"},
    "threading": {"settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads"},
    "importlib": {"invalidate_caches"},
    "type": {"__setattr__", "__delattr__"}, "object": {"__setattr__", "__delattr__"},
}
FRAME_ATTRS = ALWAYS_FRAME_ATTRS | {a for attrs in OWNED_ATTRS.values() for a in attrs}
DISPATCH_NAMES = frozenset({
    "TorchDispatchMode", "TorchFunctionMode", "DisableTorchFunction", "DisableTorchFunctionSubclass",
    "_DisableTorchDispatch", "_DisableFuncTorch", "_disable_current_modes", "_pop_mode", "_push_mode",
    "_pop_mode_temporarily", "_get_current_dispatch_mode", "_get_current_dispatch_mode_stack",
    "_python_dispatch", "_C", "_ExcludeDispatchKeyGuard", "_IncludeDispatchKeyGuard",
    "_ForceDispatchKeyGuard", "_set_dispatch_mode", "_unset_dispatch_mode", "_len_torch_function_stack",
    "_pop_torch_function_stack", "_push_on_torch_function_stack", "_get_function_stack_at",
    "_disabled_torch_function_impl", "_disabled_torch_dispatch_impl", "_RestorePythonTLSSnapshot",
    "_no_dispatch", "no_dispatch", "enable_python_dispatcher", "_overrides"})
SUBCLASS_PROTOCOL = frozenset({"__torch_function__", "__torch_dispatch__"})   # a tensor subclass: no mode involved
DISPATCH_PATTERN = re.compile(r"(?i)dispatch|torch_?function|mode_stack")
BUILTIN_CODE_CALLS = frozenset({"exec", "eval", "compile", "__import__"})   # as bare names (net.eval() is fine)
DYNAMIC_CALLS = BUILTIN_CODE_CALLS | {"import_module", "reload", "spec_from_file_location", "spec_from_loader",
                                      "module_from_spec", "exec_module", "load_module", "run_module", "run_path"}
LOADER_CALLS = frozenset({"import_module", "spec_from_file_location", "spec_from_loader", "module_from_spec",
                          "exec_module", "run_path", "run_module"})
ATTRIBUTE_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
# raw file descriptors: the worker answers the grader on an inherited pipe, so a submission that writes to a
# descriptor it found (or swaps one with dup2) can forge or swallow answers (tests/hostile/forged_pipe.py)
FD_CALLS = frozenset({"dup", "dup2", "dup3", "fdopen", "write", "writev", "pwrite", "pwritev", "fstat", "sendfile",
                      "splice", "fromfd", "openpty", "set_inheritable", "set_blocking"})
WRITE_MODE = re.compile(r"[wax+]")
MODULE_PATH = re.compile(r"^[A-Za-z_][\w.]*$")
SETTINGS = ("torch.backends.", "matplotlib.rcParams", "plt.rcParams", "mpl.rcParams", "pd.options.",
            "pandas.options.", "np.set_printoptions")
MAX_FILES = 200
# `from bnlab_public.notebook import check`: what the release's test cells do; a student may copy it into a
# cell of their own to try a check. It reaches only the vendored public copy, never the worker's probes.
STUDENT_CHECK_IMPORT = ("bnlab_public.notebook", ["check"], 0)
CODE_SUFFIXES = (".py", ".pth", ".so", ".pyc")
