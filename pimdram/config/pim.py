"""PIM designs (configs/pim/*.yaml): a memory standard plus processing-in-memory commands, units,
buffers and energies, resolved like the standard itself.

A design file names the standard it extends (`base:`) and adds to it: timing parameters,
commands of the PIM kinds (multiply-accumulate, buffer writes and reads, internal moves, unit
operations; activates and precharges of several banks at once), their timing rows, and a `pim:`
section describing the units. It may override any part of the base (e.g. NeuPIMs' 32 channels);
named `options` select documented alternatives (e.g. AttAcc's power-limited all-bank MAC
spacing). The same composition lets a standard file derive a speed bin from another (`base:`
without a `pim:` section). See docs/pim-configs.md.
"""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import ConfigError
from .memory import COMMAND_KINDS, _int_expr
from .section import Section

ROW_BUFFER_MODES = ("concurrent", "blocked")
UNIT_KINDS = ("mac", "function")       # multiply-accumulate units; softmax / activation-function units

# Keys of a design file handled here; every other key is merged into the base standard.
DESIGN_KEYS = ("base", "options")
MERGED_LISTS = ("constraints",)         # lists the design extends; every other list replaces
OPTION_KEYS = ("timing", "constraints", "commands", "pim")   # what an option's choice may set


@dataclass
class PimUnit:
    name: str
    kind: str                   # "mac" or "function"
    level: int                  # organisation level the units sit at (bank: one per bank, ...)
    banks_per_unit: int         # banks sharing one unit (HBM-PIM, PAPI Attn-PIM: 2)
    fpus: int                   # floating-point units per unit (PAPI FC-PIM: 4)
    lanes: int                  # multiply-accumulates per FPU per operation (32 B of FP16: 16)
    clock_mhz: Optional[float]  # the unit's clock when slower than the command clock, else None
    elements_per_cycle: float   # function units: throughput in elements per command-clock cycle
    latency: int                # function units: pipeline latency in cycles

    def macs_per_cycle(self, tck_ns):
        """Multiply-accumulates one unit completes per command-clock cycle at full rate."""
        rate = self.fpus * self.lanes
        if self.clock_mhz is not None:
            rate *= min(1.0, self.clock_mhz * tck_ns / 1000.0)
        return rate


@dataclass
class PimBuffer:
    name: str
    level: int                  # one buffer per node of this level
    bytes: int


@dataclass
class PimSpec:
    design: str
    base: str
    mode: str                   # normal traffic during a PIM operation: "concurrent" or "blocked"
    row_buffers: int            # 2: PIM operations use their own row buffer (NeuPIMs)
    units: Dict[str, PimUnit]
    buffers: Dict[str, PimBuffer]
    energy: Dict[str, float]    # pJ figures (per byte, per MAC, per command) as named in the file
    command_energy: Dict[str, dict]   # command -> {"like": other command, "factor": f} or {"pj": e}
    options: Dict[str, str]     # option name -> the choice in effect
    option_choices: Dict[str, List[str]] = field(default_factory=dict)
    lowering: dict = field(default_factory=dict)   # generic GEMV lowering (see resolve_pim)
    # command kinds whose energy pim_access_pj_per_byte already includes (AttAcc: activate and
    # precharge, whose row energy is in the per-byte figure): they add nothing of their own
    access_includes: tuple = ()

    def to_dict(self, levels):
        return {
            "design": self.design,
            "base": self.base,
            "mode": self.mode,
            "row_buffers": self.row_buffers,
            "options": {k: {"value": v, "choices": self.option_choices.get(k, [])} for k, v in self.options.items()},
            "units": {u.name: _unit_dict(u, levels) for u in self.units.values()},
            "buffers": {b.name: {"level": levels[b.level], "bytes": b.bytes} for b in self.buffers.values()},
            "energy": {**self.energy, **({"pim_access_includes": list(self.access_includes)}
                                         if self.access_includes else {})},
            "command_energy": copy.deepcopy(self.command_energy),
            **({"lowering": copy.deepcopy(self.lowering)} if self.lowering else {}),
        }


def _unit_dict(u, levels):
    d = {"kind": u.kind, "level": levels[u.level]}
    if u.kind == "mac":
        d.update(banks_per_unit=u.banks_per_unit, fpus=u.fpus, lanes=u.lanes)
        if u.clock_mhz is not None:
            d["clock_mhz"] = u.clock_mhz
    else:
        d.update(elements_per_cycle=u.elements_per_cycle, latency=u.latency)
    return d


# --- composition -----------------------------------------------------------------------------

def split_option_overrides(overrides):
    """`--set` overrides split into option choices (`options.NAME=CHOICE`) and the rest."""
    choices, rest = {}, {}
    for key, value in (overrides or {}).items():
        if key.startswith("options.") and key.count(".") == 1:
            choices[key.split(".", 1)[1]] = value
        else:
            rest[key] = value
    return choices, rest


def compose(design, base, source, choices=None, from_set=()):
    """The raw config a derived file describes: `base` (the composed raw data of the standard or
    design it names) with the file's keys merged in and its own options applied (`choices` may
    also hold choices for options of other files of the chain). Returns (raw, options of this
    file in effect, the choices each of them offers)."""
    design = copy.deepcopy(design)
    root = Section(design, source=source)
    root.get("base")
    opts_sec = root.section("options")
    in_effect, offered, fragments = {}, {}, []
    for name in list(opts_sec.keys()):
        o = opts_sec.section(name)
        alternatives = o.section("choices", required=True)
        names = list(alternatives.keys())
        if not names:
            raise alternatives.error("", "at least one choice is needed")
        default = o.choice("default", names)
        o.get("doc")
        o.done()
        picked = (choices or {}).get(name, default)
        if picked not in names:
            where = f"--set options.{name}" if name in from_set else f"{source}: options.{name}"
            raise ConfigError(f"{where}: unknown choice {picked!r}; expected one of {', '.join(map(str, names))}")
        for n in names:
            frag = alternatives.section(n)
            for k in frag.keys():
                if k not in OPTION_KEYS:
                    raise frag.error(k, "an option choice may set timing, commands, constraints and pim only")
                frag.get(k)
            frag.done()
        alternatives.done()
        in_effect[name] = picked
        offered[name] = [str(n) for n in names]
        fragments.append(alternatives.data[picked] or {})
    merged = copy.deepcopy(base)
    merged.pop("base", None)
    for key in design:
        if key not in DESIGN_KEYS:
            merged[key] = _merge(merged.get(key), design[key], key)
    for frag in fragments:
        for key, value in frag.items():
            merged[key] = _merge(merged.get(key), value, key)
    merged["base"] = design["base"]      # kept for the record (resolve_memory reads it)
    return merged, in_effect, offered


def _merge(old, new, key):
    if key in MERGED_LISTS and isinstance(old, list) and isinstance(new, list):
        return old + new
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            if key == "timing" and isinstance(k, str) and k[:1] in "tn" and len(k) > 1 and k != "tCK":
                out.pop(("n" if k[0] == "t" else "t") + k[1:], None)   # a t-value replaces its n twin
            out[k] = _merge(out.get(k), v, k)
        return out
    return copy.deepcopy(new)


# --- the pim: section ----------------------------------------------------------------------------

def resolve_pim(sec, design, base, levels, commands, timing, options, offered):
    """A PimSpec from the `pim:` section (a Section); commands are the resolved Command list, whose
    `unit` and `buffer` names are checked here."""
    mode = sec.choice("mode", ROW_BUFFER_MODES, "concurrent")
    row_buffers = sec.number("row_buffers", 1, positive=True, integer=True)
    if row_buffers > 2:
        raise sec.error("row_buffers", "1 (shared) or 2 (a separate PIM row buffer) are supported")
    units = {}
    usec = sec.section("units", required=True)
    for name in usec.keys():
        u = usec.section(name)
        kind = u.choice("kind", UNIT_KINDS)
        level = u.choice("level", levels)
        if kind == "mac":
            unit = PimUnit(
                str(name), kind, levels.index(level),
                banks_per_unit=u.number("banks_per_unit", 1, positive=True, integer=True),
                fpus=u.number("fpus", 1, positive=True, integer=True),
                lanes=u.number("lanes", positive=True, integer=True),
                clock_mhz=u.number("clock_mhz", None, positive=True),
                elements_per_cycle=0.0, latency=0)
            if unit.banks_per_unit > 1 and level != "bank":
                raise u.error("banks_per_unit", "units shared by several banks sit at level bank")
        else:
            unit = PimUnit(
                str(name), kind, levels.index(level), banks_per_unit=1, fpus=1, lanes=0, clock_mhz=None,
                elements_per_cycle=float(u.number("elements_per_cycle", positive=True)),
                latency=_int_expr(u, "latency", timing))
        u.get("source")
        u.done()
        units[str(name)] = unit
    usec.done()
    if not any(u.kind == "mac" for u in units.values()):
        raise sec.error("units", "at least one unit of kind mac is needed")

    buffers = {}
    bsec = sec.section("buffers")
    for name in bsec.keys():
        b = bsec.section(name)
        buffers[str(name)] = PimBuffer(str(name), levels.index(b.choice("level", levels)),
                                       b.number("bytes", positive=True, integer=True))
        b.get("source")
        b.done()
    bsec.done()

    lowering = _lowering(sec.section("lowering"), commands, levels)

    energy = {}
    esec = sec.section("energy")
    command_energy = {}
    names = [c.name for c in commands]
    access_includes = ()
    for key in list(esec.keys()):
        if key == "pim_access_includes":
            kinds = esec.get(key, types=list)
            bad = [k for k in kinds if k not in COMMAND_KINDS]
            if bad:
                raise esec.error(key, f"unknown command kind {bad[0]!r}; expected kinds of {', '.join(COMMAND_KINDS)}")
            if "pim_access_pj_per_byte" not in esec.data:
                raise esec.error(key, "says what pim_access_pj_per_byte includes: give that figure too")
            access_includes = tuple(kinds)
            continue
        if key == "commands":
            csec = esec.section("commands")
            for cname in csec.keys():
                if cname not in names:
                    raise csec.error(cname, f"unknown command {cname!r}")
                c = csec.section(cname)
                if "like" in c:
                    like = c.choice("like", names)
                    command_energy[str(cname)] = {"like": like, "factor": float(c.number("factor", 1.0, positive=True))}
                else:
                    command_energy[str(cname)] = {"pj": float(c.number("pj"))}
                c.get("source")
                c.done()
            csec.done()
            continue
        v = esec.number(key)
        if v < 0:
            raise esec.error(key, "must not be negative")
        energy[str(key)] = float(v)
    esec.done()
    sec.get("source")
    sec.done()

    for i, c in enumerate(commands):
        where = f"commands.{c.name}"
        if c.unit and c.unit not in units:
            raise ConfigError(f"{sec.source}: {where}.unit: unknown unit {c.unit!r}; known: {', '.join(units)}")
        if c.buffer and c.buffer not in buffers:
            raise ConfigError(f"{sec.source}: {where}.buffer: unknown buffer {c.buffer!r}; known: {', '.join(buffers) or 'none'}")
        if c.kind == "mac" and not c.unit:
            raise ConfigError(f"{sec.source}: {where}: a mac command needs the unit it runs on (unit:)")
        if c.kind == "unit_op" and not c.unit:
            raise ConfigError(f"{sec.source}: {where}: a unit_op command needs the unit it runs on (unit:)")
        if c.row_buffer == "pim" and row_buffers < 2:
            raise ConfigError(f"{sec.source}: {where}.row_buffer: 'pim' needs pim.row_buffers: 2")
    return PimSpec(design=design, base=base, mode=mode, row_buffers=row_buffers, units=units, buffers=buffers,
                   energy=energy, command_energy=command_energy, options=options, option_choices=offered,
                   lowering=lowering, access_includes=access_includes)


KV_PLACEMENTS = ("head", "request")


#: the lowerings of pimdram/lower and, for AttAcc's, its variants with the commands each needs
LOWERINGS = ("attacc", "gemv")
ATTACC_MODES = {"bank": ("ACTAB", "MACAB", "PREAB"), "bankgroup": ("ACTSB", "MACSB", "PRESB"),
                "buffer": ("ACTPB", "MACPB", "PREPB")}
ATTACC_MOVES = ("WRGB", "MVSB", "MVGB", "SFM")


def _lowering(sec, commands, levels):
    """`pim.lowering`: how kernels become command programs on the design (pimdram/lower).

    mapping: attacc (AttAcc's head-wise mapping, pimdram/lower/attacc.py) with `mode` bank,
    bankgroup or buffer, whose commands the design must have; or gemv (pimdram/lower/generic.py)
    with `gemv: {mac, activate, precharge, input: {command, bytes}, output: {command, bytes}}`
    naming the design's commands for one GEMV. kv_cache: head (each request x KV head in one
    channel, round robin) or request (a request's whole KV cache in one channel). A design
    without a lowering has its kernels modelled (roofline)."""
    if not sec.data:
        sec.done()
        return {}
    by_name = {c.name: c for c in commands}
    mapping = sec.choice("mapping", LOWERINGS, "gemv" if "gemv" in sec.data else None)
    out = {"mapping": mapping, "kv_cache": sec.choice("kv_cache", KV_PLACEMENTS, "head")}
    if mapping == "attacc":
        mode = sec.choice("mode", tuple(ATTACC_MODES))
        missing = [n for n in ATTACC_MODES[mode] + ATTACC_MOVES if n not in by_name]
        if missing:
            raise sec.error("mode", f"AttAcc's {mode}-level mapping needs command(s) {', '.join(missing)}")
        out["mode"] = mode
        sec.done()
        return out
    g = sec.section("gemv", required=True)

    def command(key, kinds, where=g):
        name = where.require(key, str)
        if name not in by_name:
            raise where.error(key, f"unknown command {name!r}")
        if by_name[name].kind not in kinds:
            raise where.error(key, f"{name} is a {by_name[name].kind} command; expected {' or '.join(kinds)}")
        return name

    gemv = {"mac": command("mac", ("mac",)), "activate": command("activate", ("activate",)),
            "precharge": command("precharge", ("precharge",))}
    mac, act, pre = (by_name[gemv[k]] for k in ("mac", "activate", "precharge"))
    if act.scope < mac.scope or pre.scope != mac.scope or act.row_buffer != mac.row_buffer:
        raise g.error("activate", "the activate must sit at or below the mac's scope, the precharge at it, "
                                  "both on the mac's row buffer")
    if mac.banks != "all":
        raise g.error("mac", "the generic GEMV lowering needs a mac over every bank under its node")
    for key, kinds in (("input", ("buffer_write",)), ("output", ("buffer_read", "move"))):
        t = g.section(key, required=True)
        gemv[key] = {"command": command("command", kinds, t), "bytes": t.number("bytes", positive=True, integer=True)}
        t.done()
    g.done()
    sec.done()
    out["gemv"] = gemv
    return out
