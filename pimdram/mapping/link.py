"""Dependencies between kernels from the tensors they read and write, the transfers between
memories those imply, and the all-reduces of tensor-parallel device groups.

A Linker follows the tensors across the steps of a workload: each step's kernels are linked in
turn (`link`), and a kernel depends on the kernels of its own step (`deps`, positions in the
step's list) and of the step before (`prev_deps`, positions in that step's list) that last wrote
the data it reads. A dependency on an older step is dropped: that step ended before the previous
one began, as steps run in order.
"""
import copy

from ..llm.kernels import Kernel, Operand


class _Piece:
    """Part of a tensor: where it is (memory -> the kernels after which it is there), its size."""
    __slots__ = ("ready", "bytes", "origin")

    def __init__(self, memory, ref, nbytes, device):
        self.ready = {memory: [ref]}         # memory -> [(step number, position)]
        self.bytes = nbytes
        self.origin = device


class Linker:
    def __init__(self, system):
        self.system = system
        self.tensors = {}
        self.step = -1
        self.split_owner = {}        # kernel name -> the device of its first split part

    def copy(self):
        """An independent copy of the state (to link a step ahead without committing it)."""
        other = Linker(self.system)
        other.tensors = copy.deepcopy(self.tensors)
        other.step = self.step
        other.split_owner = dict(self.split_owner)
        return other

    def link(self, kernels):
        """Link one step's kernels (in order): set each kernel's `deps` and `prev_deps`, insert
        transfers and all-reduces, assign every operand its region; returns the step's list."""
        self.step += 1
        step, system = self.step, self.system
        out = []

        def add(k):
            k.id = len(out)
            out.append(k)
            return (step, k.id)

        def split(refs):
            return ({i for s, i in refs if s == step}, {i for s, i in refs if s == step - 1})

        def make_present(k, o, memory, device):
            """References k must wait for so that the tensor of `o` is in `memory` (inserting transfers)."""
            refs = []
            for piece in self.tensors.get(o.tensor, []):
                if memory not in piece.ready:
                    src_mem = next(iter(piece.ready))
                    link = system.link_between(piece.origin, device)
                    where = ("kv_cache." + o.tensor) if o.role == "kv_cache" else "activations"
                    short = o.tensor.rsplit(".", 1)[-1]
                    t = Kernel("transfer", "communication", k.layer, k.step, k.phase, shape={"bytes": piece.bytes},
                               flops=0, operands=[
                                   Operand(short, o.role, "read", o.dtype, (piece.bytes,), piece.bytes, o.tensor,
                                           region=f"{src_mem}:{where}"),
                                   Operand(short, o.role, "write", o.dtype, (piece.bytes,), piece.bytes, o.tensor,
                                           region=f"{memory}:{where}")],
                               sub_batch=k.sub_batch, requests=k.requests, device=link.name, link=link.name)
                    t.deps, t.prev_deps = (sorted(x) for x in split(piece.ready[src_mem]))
                    piece.ready[memory] = [add(t)]
                refs.extend(piece.ready[memory])
            return refs

        for k in kernels:
            memory = system.devices[k.device].memory
            refs = []
            for o in k.operands:
                if o.access == "read" and o.role != "weight" and o.tensor in self.tensors:
                    refs.extend(make_present(k, o, memory, k.device))
                if o.access == "write" and o.mode in ("append", "update") and o.tensor in self.tensors:
                    refs.extend(make_present(k, o, memory, k.device))
            for o in k.operands:
                o.region = self._region(o, memory)
            k.deps, k.prev_deps = (sorted(x) for x in split(refs))
            ref = add(k)
            for o in k.operands:
                if o.access != "write":
                    continue
                if o.mode == "write" or o.tensor not in self.tensors:
                    self.tensors[o.tensor] = [_Piece(memory, ref, o.bytes, k.device)]
                elif o.mode == "partial":
                    self.tensors[o.tensor].append(_Piece(memory, ref, o.bytes, k.device))
                else:  # update in place or append to a KV cache: the earlier contents are here (made present above)
                    total = sum(p.bytes for p in self.tensors[o.tensor]) + (o.bytes if o.mode == "append" else 0)
                    self.tensors[o.tensor] = [_Piece(memory, ref, total, k.device)]
            # a split product (FF co-processing) is reduced after its last part, on its first
            # part's device group (the xPU's when the PIM device took every column), over the
            # whole output
            owner = k.device
            if k.split is not None:
                if k.split[0] == 0:
                    self.split_owner[k.name] = k.device
                owner = self.split_owner.get(k.name, system.roles.get("xpu", k.device))
                if k.split[0] == k.split[1] - 1:
                    self.split_owner.pop(k.name, None)
            dev = system.devices[owner]
            if dev.tensor_parallel and dev.count > 1 and k.name in ("output_projection", "ffn_down", "moe_combine") \
                    and not (k.name == "ffn_down" and k.expert is not None) and not k.accumulated \
                    and (k.split is None or k.split[0] == k.split[1] - 1):
                y = next(o for o in k.operands if o.access == "write")
                home = dev.memory
                link = system.link_between(owner, owner)
                size = sum(p.bytes for p in self.tensors[y.tensor])
                # the devices' partial sums of y are added by a ring all-reduce over the group
                ar = Kernel("all_reduce", "communication", k.layer, k.step, k.phase,
                            shape={"bytes": size, "devices": dev.count}, flops=0,
                            operands=[Operand(y.name, "activation", "read", y.dtype, y.shape, size, y.tensor,
                                              region=f"{home}:activations"),
                                      Operand(y.name, "activation", "write", y.dtype, y.shape, size, y.tensor,
                                              region=f"{home}:activations")],
                            sub_batch=k.sub_batch, requests=k.requests, device=link.name, link=link.name,
                            collective="all_reduce")
                ar.deps, ar.prev_deps = (sorted(x) for x in split(make_present(ar, ar.operands[0], home, owner)))
                self.tensors[y.tensor] = [_Piece(home, add(ar), size, owner)]
        return out

    def _region(self, o, memory):
        if o.on_chip:
            return None
        if o.role == "weight":
            forced = self.system.placement.weights
            return f"{memory if forced == 'follow' else forced}:weights.{o.tensor}"
        if o.role == "kv_cache":
            return f"{memory}:kv_cache.{o.tensor}"
        return f"{memory}:activations"
