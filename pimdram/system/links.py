"""Transfers and collectives on links: a latency-bandwidth model (docs/systems.md).

    point to point  latency + bytes / (lanes x bandwidth)     lanes: 1 on a shared link, the
                                                               group size on `pairs` links; the
                                                               link is busy for the bytes only
    all-reduce      2 (N - 1) steps of latency + bytes / (N x bandwidth)   (ring over N devices)
    all-gather      N - 1 steps of latency + bytes / (N x bandwidth)
                    the link is busy for the steps' bytes; their latencies come after, while
                    the link may carry another collective (NCCL runs several at once)

`bytes` is the tensor (a collective's) or the data moved (a transfer); bandwidth is per link and
direction. Energy counts every byte that crosses a link: a ring all-reduce sends 2 (N - 1) / N
of the tensor from each of its N devices.
"""
from .timing import KernelTiming, energy, joules

#: collective -> steps of a ring over n devices
RING_STEPS = {"all_reduce": lambda n: 2 * (n - 1), "all_gather": lambda n: n - 1}


def link_timing(kernel, link, system):
    """KernelTiming of a communication kernel on `link` (config.system.Link)."""
    shape = kernel.get("shape", {})
    nbytes = shape.get("bytes", kernel["bytes_read"])
    collective = kernel.get("collective")
    if collective is not None:
        n = shape.get("devices") or system.devices[link.between[0]].count
        # the link is busy while the ring's chunks go out; each step's latency is spent waiting on
        # the neighbour, while the link carries other traffic (another sub-batch's collective)
        duration, latency = ring_ns(collective, nbytes, n, link)
        crossed = RING_STEPS[collective](n) * nbytes
    else:
        # a transfer holds the link while its bytes go out; they arrive a latency later, while
        # the link carries the next transfer
        lanes = system.devices[link.between[0]].count if link.topology == "pairs" else 1
        latency = link.latency_us * 1e3
        duration = transfer_ns(nbytes, link, lanes) - latency
        crossed = nbytes
    return KernelTiming(duration, "model", energy=energy(communication=joules(crossed, link.energy_pj_per_byte)),
                        latency_ns=latency)


def transfer_ns(nbytes, link, lanes=1):
    """Nanoseconds to move `nbytes` point to point, split over `lanes` parallel links."""
    return link.latency_us * 1e3 + nbytes / (lanes * link.bandwidth_gbs)


def ring_ns(collective, nbytes, devices, link):
    """(ns the link carries chunks, ns of step latencies) of a ring collective of a `nbytes`
    tensor over `devices` devices on `link`."""
    if devices <= 1:
        return 0.0, 0.0
    steps = RING_STEPS[collective](devices)
    return steps * nbytes / (devices * link.bandwidth_gbs), steps * link.latency_us * 1e3


def collective_ns(collective, nbytes, devices, link):
    """Nanoseconds of a ring collective of a `nbytes` tensor over `devices` devices on `link`."""
    return sum(ring_ns(collective, nbytes, devices, link))
