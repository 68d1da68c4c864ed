"""Ahead-of-time compilation of the Triton kernels for a CUDA target, on a machine without a GPU, and
a reading of the SASS they compile to.

Two uses, both in development, neither at run time:

* ``tests/kernels/aot_compile.py``: every kernel variant compiles for sm_90 (catches what the
  interpreter accepts and the compiler does not);
* ``benchmarks/sass_budget.py`` and ``tests/kernels/test_kernels_sass.py``: the instruction mix of
  each kernel's main loop at the levels' real shapes, against the 8 issue slots one MUFU.EX2 costs a
  warp (the exponential unit is the floor at head dim 16).

:func:`capture_launches` runs the real autograd wrappers up to the launch and records the arguments
instead of launching, so the compiled variant is specialised exactly as the JIT would specialise it
for that call (16-byte alignment, integers divisible by 16, integers equal to 1).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.jit import JITFunction

SM90 = GPUTarget("cuda", 90, 32)


def jit_function(kernel) -> JITFunction:
    """The JITFunction under autotune / heuristics wrappers."""
    fn = kernel
    while not isinstance(fn, JITFunction):
        fn = fn.fn
    return fn


def _specialize(value):
    """(type, key) as the JIT's specialisation gives it for an argument value."""
    try:
        from triton._C.libtriton import native_specialize_impl
        from triton.backends.nvidia.compiler import CUDABackend
        return native_specialize_impl(CUDABackend, value, False, True, True)
    except ImportError:  # older Triton: the same rules, written out
        if isinstance(value, bool):
            return "i1", None
        if isinstance(value, int):
            if value == 1:
                return "constexpr", 1
            return ("i32" if -2**31 <= value < 2**31 else "i64"), ("D" if value % 16 == 0 else "")
        if isinstance(value, float):
            return "fp32", None
        dtype = str(value.dtype).replace("torch.", "")
        short = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float64": "fp64", "int8": "i8",
                 "int32": "i32", "int64": "i64", "bool": "i1", "uint8": "u8"}[dtype]
        return "*" + short, ("D" if value.data_ptr() % 16 == 0 else "")


def compile_kernel(kernel, args: dict, constexprs: dict | None = None, *, num_warps: int = 4, num_stages: int = 2,
                   target: GPUTarget = SM90):
    """Compile ``kernel`` for ``target``. ``args`` maps each runtime argument name to an example value
    (a tensor for a pointer, an int or a float); ``constexprs`` maps the constexpr names to values.
    Alternatively a name in ``args`` may map to a type string ("*bf16", "i32", "fp32") with no hints."""
    fn = jit_function(kernel)
    consts = dict(constexprs or {})
    sig, attrs = {}, {}
    for i, name in enumerate(fn.arg_names):
        if name in consts:
            sig[name] = "constexpr"
            continue
        value = args[name]
        if isinstance(value, str):
            sig[name] = value
            continue
        ty, key = _specialize(value)
        if ty == "constexpr":
            consts[name] = key
            sig[name] = "constexpr"
            continue
        sig[name] = ty
        if key and "D" in key:
            attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
    return triton.compile(src, target=target, options={"num_warps": num_warps, "num_stages": num_stages})


# ----------------------------------------------------------------------------- recording real launches

@dataclass
class Launch:
    kernel: object  # the autotuned kernel object
    args: dict      # runtime arguments by name
    constexprs: dict

    @property
    def name(self) -> str:
        return jit_function(self.kernel).__name__

    def configs(self):
        """The (constexprs, num_warps, num_stages) candidates the autotuner would try."""
        cfgs = getattr(self.kernel, "configs", None) or [triton.Config({}, num_warps=4, num_stages=2)]
        return [(dict(self.constexprs, **c.kwargs), c.num_warps, c.num_stages) for c in cfgs]


@contextlib.contextmanager
def capture_launches(*kernels):
    """Within the block, launching any of ``kernels`` records a :class:`Launch` instead of running.
    Yields the list the launches are appended to."""
    launches: list[Launch] = []
    saved = []
    for kernel in kernels:
        fn = jit_function(kernel)

        def record(*args, grid=None, warmup=False, _kernel=kernel, _fn=fn, **kwargs):
            names = _fn.arg_names
            bound = dict(zip(names, args))
            consts = {k: v for k, v in kwargs.items() if k in names}
            for name, param in zip(names, _fn.params):
                if param.is_constexpr and name in bound:
                    consts[name] = bound.pop(name)
            launches.append(Launch(_kernel, bound, consts))

        saved.append((kernel, kernel.__dict__.get("run")))
        kernel.run = record
    try:
        yield launches
    finally:
        for kernel, old in saved:
            if old is None:
                del kernel.run
            else:
                kernel.run = old


# ----------------------------------------------------------------------------- SASS

def _cuobjdump() -> str:
    try:
        return triton.knobs.nvidia.cuobjdump.path
    except AttributeError:
        return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")


def sass(compiled) -> str:
    """The SASS text of a compiled kernel (cuobjdump bundled with Triton)."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        return subprocess.run([_cuobjdump(), "-sass", f.name], check=True, capture_output=True, text=True).stdout


_INSTR = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_BRANCH = re.compile(r"\bBRA\s+(?:!?U?P\w+,\s*)?(?:`\(\.L_x_\d+\)|(0x[0-9a-f]+))")


def instructions(sass_text: str) -> list[tuple[int, str]]:
    """(address, instruction) for every instruction."""
    out = []
    for line in sass_text.splitlines():
        m = _INSTR.match(line)
        if m:
            out.append((int(m.group(1), 16), m.group(2)))
    return out


def main_loop(sass_text: str) -> list[tuple[int, str]]:
    """(address, instruction) of the longest loop (a backward branch and its target)."""
    ins = instructions(sass_text)
    loops = []
    for addr, text in ins:
        m = _BRANCH.search(text)
        if m and m.group(1) and int(m.group(1), 16) < addr:
            loops.append((int(m.group(1), 16), addr))
    if not loops:
        return []
    lo, hi = max(loops, key=lambda r: r[1] - r[0])
    return [(addr, text) for addr, text in ins if lo <= addr <= hi]


def path_lengths(body: list[tuple[int, str]]) -> tuple[int, int]:
    """(shortest, longest) number of instructions issued by one trip of the loop ``body``, over the
    ways its forward branches can go (e.g. a block pair that skips its per-score predicate, or not).
    Predicated-off instructions still issue and count; an inner backward branch falls through."""
    if not body:
        return 0, 0
    at = {addr: i for i, (addr, _) in enumerate(body)}
    last = len(body) - 1
    succ = []
    for i, (addr, text) in enumerate(body):
        m = _BRANCH.search(text)
        target = at.get(int(m.group(1), 16)) if m and m.group(1) else None
        if i == last or target is None or target <= i:
            succ.append([i + 1] if i < last else [])
        elif re.match(r"^@!?U?P[0-9]", text):  # conditional (@PT is always taken)
            succ.append([i + 1, target])
        else:
            succ.append([target])
    short, long = [0] * len(body), [0] * len(body)
    for i in range(last, -1, -1):
        nxt = succ[i]
        short[i] = 1 + (min(short[j] for j in nxt) if nxt else 0)
        long[i] = 1 + (max(long[j] for j in nxt) if nxt else 0)
    return short[0], long[0]


def opcode(text: str) -> str:
    """'@!P0 LDG.E.U16 R1, [R2]' -> 'LDG.E.U16'."""
    text = re.sub(r"^@!?U?P[T0-9]+\s+", "", text.strip())
    return text.split()[0]


def opcode_counts(body: list[str]) -> collections.Counter:
    return collections.Counter(opcode(t) for t in body)


# ----------------------------------------------------------------------------- a static cycle model

# Hopper, per multiprocessor and clock: 4 schedulers issue one warp instruction each; 16 MUFU.EX2
# lanes; 2048 bf16/fp16 tensor-core multiply-adds (989 dense TFLOP/s / 132 SMs / 1.83 GHz).
ISSUE_PER_CLK = 4
EX2_PER_CLK = 16
TENSOR_FMA_PER_CLK = 2048
_GMMA = re.compile(r"^HGMMA\.(\d+)x(\d+)x(\d+)")
_MMA = {"HMMA.16816": 16 * 8 * 16, "HMMA.1688": 16 * 8 * 8}  # mma.sync shapes (per warp)


@dataclass
class LoopBudget:
    """Cycles one multiprocessor needs per trip of a kernel's main loop, per bounding resource, from
    the SASS alone (no latency, no memory): the kernel cannot run faster than the largest of them.
    ``items`` are the scores (or edge-head pairs) one trip of one program handles."""
    instructions: int      # per warp, per trip: the longest path through the loop (e.g. a masked block pair)
    skippable: int         # how many fewer the shortest path issues (a pair without a per-score predicate)
    ex2: int               # MUFU.EX2 per warp, per trip
    local_memory: int      # LDL/STL per warp, per trip (register spills)
    items: int
    num_warps: int
    tensor_fma: int        # tensor-core multiply-adds per program, per trip
    opcodes: dict

    fast_path: bool = False  # cycles of the path that skips the per-score predicate

    def fast(self) -> "LoopBudget":
        return dataclasses.replace(self, fast_path=True)

    @property
    def issued(self) -> int:
        return self.instructions - (self.skippable if self.fast_path else 0)

    @property
    def issue_cycles(self) -> float:
        return self.issued * self.num_warps / ISSUE_PER_CLK

    @property
    def ex2_cycles(self) -> float:
        return self.ex2 * 32 * self.num_warps / EX2_PER_CLK

    @property
    def tensor_cycles(self) -> float:
        return self.tensor_fma / TENSOR_FMA_PER_CLK

    @property
    def bound_cycles(self) -> float:
        return max(self.issue_cycles, self.ex2_cycles, self.tensor_cycles)

    @property
    def exp_floor_cycles(self) -> float:
        """One exponential per item at the MUFU rate: the floor DESIGN.md sets for d = 16."""
        return self.items / EX2_PER_CLK

    @property
    def vs_exp_floor(self) -> float:
        return self.bound_cycles / self.exp_floor_cycles

    @property
    def bound_by(self) -> str:
        c = {"issue": self.issue_cycles, "MUFU.EX2": self.ex2_cycles, "tensor": self.tensor_cycles}
        return max(c, key=c.get)

    @property
    def instructions_per_item(self) -> float:
        """Warp instructions per 32 items: 8 or fewer leaves the MUFU as the bound."""
        return self.issued * self.num_warps * 32 / self.items

    @property
    def ex2_per_item(self) -> float:
        return self.ex2 * 32 * self.num_warps / self.items


def loop_budget(sass_text: str, items: int, num_warps: int) -> LoopBudget:
    body = main_loop(sass_text)
    if not body:
        raise ValueError("no loop found in the SASS")
    shortest, longest = path_lengths(body)
    ops = opcode_counts([text for _, text in body])
    fma = 0
    for op, n in ops.items():
        m = _GMMA.match(op)
        if m:  # a warpgroup instruction (M x N x K for its 4 warps), one per warpgroup
            fma += n * int(m.group(1)) * int(m.group(2)) * int(m.group(3)) * max(1, num_warps // 4)
        for prefix, per_warp in _MMA.items():
            if op.startswith(prefix + "."):
                fma += n * per_warp * num_warps
    return LoopBudget(instructions=longest, skippable=longest - shortest, ex2=ops.get("MUFU.EX2", 0),
                      local_memory=sum(n for op, n in ops.items() if op.startswith(("LDL", "STL"))),
                      items=items, num_warps=num_warps, tensor_fma=fma, opcodes=dict(ops.most_common()))
