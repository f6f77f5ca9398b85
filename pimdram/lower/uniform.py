"""Programs of channels that hold n attention instances of one context, for many n.

A served stream times a channel of n instances all of context L (PimMemory's share table) for
every n its batches give a channel, and n moves by one or two as requests come and go.
attention_instances pairs the instances in order and lays instance i's K and V from row
2 i r (r rows each), so the program of n instances is the program of the first 2 floor(n / 2)
(the same commands, row for row, and the same state passed on) followed by the last instance
when n is odd and the flush. UniformAttention builds the pairs once, keeps the builder's state
after each, and makes the program of any n from the state after its pairs: what it returns is
the program attention_layer builds (tests/test_lower_uniform.py compares them command by command).

A pair's commands depend on its rows only through the rows its activates and MACs name, and
otherwise on what the pair before passed on (its last MVSB and the banks it leaves open, and the
MACs since the last refresh fence). Where two pairs begin in the same state (without fences,
every pair after the first) the second is the first's commands with those rows moved on.
"""
import numpy as np

from .attacc import attention_pair, attention_single


class UniformAttention:
    """attention_layer's programs of one context L and head dimension d for any instance count:
    `new_builder()` makes an empty builder of the design (lower.attacc._Builder)."""

    def __init__(self, new_builder, L, d):
        self.new_builder, self.L, self.d = new_builder, L, d
        self.master = new_builder()            # the pairs built so far
        self.rows = self.master.rows_per_gemv(L, d)
        self.states = [self.master.state()]     # the master's state after k pairs, k = index
        # the last pair built: (state it began in, its blocks, its command counts, its first row,
        # state it left); a pair that begins in the same state is the same commands on other rows
        self._last = None
        self.reused = 0

    def program(self, n):
        """A builder holding the program of `n` instances (attention_layer(b, n, L, d))."""
        L, d, r, b = self.L, self.d, self.rows, self.master
        if 2 * n * r > b.spec.rows:
            raise ValueError(f"{n} instances of {L} tokens x {d} need {2 * n * r} rows per bank in a channel; the "
                             f"memory has {b.spec.rows}")
        while len(self.states) <= n // 2:
            k0 = 4 * (len(self.states) - 1) * r     # the pair's first instance: K from k0, V from k0 + r
            entry = self.states[-1]
            last = self._last
            if last is not None and _same_entry(last[0], entry):
                # the pair before began in the same state: this one is it, rows moved on
                _, blocks, counts, row, exit_ = last
                b.blocks.extend(_moved(blk, k0 - row, b.act, b.mac) for blk in blocks)
                b.counts += counts
                b.carry, b.carry_close, b.since_close = list(exit_[2]), list(exit_[3]), exit_[4]
                self.reused += 1
            else:
                start, counts = len(b.blocks), b.counts.copy()
                attention_pair(b, L, L, d, k0, k0 + 2 * r, k0 + r, k0 + 3 * r)
                self._last = (entry, b.blocks[start:], b.counts - counts, k0, b.state())
            self.states.append(b.state())
        out = self.new_builder()
        out.resume(self.states[n // 2], b.blocks)
        if n % 2:
            k = 2 * (n - 1) * r
            attention_single(out, L, d, k, k + r)
        if n:
            out.flush(0)
        return out


def _same_entry(a, b):
    """Whether two builder states (_Builder.state) pass the same to what follows."""
    return a[2] == b[2] and a[3] == b[3] and a[4] == b[4]


def _moved(block, delta, act, mac):
    """A program block (feed_program columns) with the rows of its activates and MACs `delta` on."""
    ch, command, node, select, row, occupancy = block
    moved = (command == act) | (command == mac)
    return ch, command, node, select, np.where(moved, row + delta, row).astype(row.dtype), occupancy
