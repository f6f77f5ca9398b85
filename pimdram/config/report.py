"""What an imported configuration (DRAMsim3 .ini, Ramulator 2 YAML) did not carry over, for the one
warning an import gives and the header of the YAML it writes."""
from dataclasses import dataclass, field
from typing import List, Tuple


@dataclass
class ImportReport:
    source: str                  # the imported file
    simulator: str               # "DRAMsim3", "Ramulator 2"
    unmodelled: List[Tuple[str, str]] = field(default_factory=list)   # (key, why): changes the other simulator's results
    unused: List[Tuple[str, str]] = field(default_factory=list)       # (key, why): the other simulator ignores it
    notes: List[Tuple[str, str]] = field(default_factory=list)        # (key, what was done)
    defaults: List[Tuple[str, object]] = field(default_factory=list)  # (key, value): absent, its default applied

    def not_modelled(self, key, why):
        self.unmodelled.append((key, why))

    def ignored(self, key, why):
        self.unused.append((key, why))

    def note(self, key, what):
        self.notes.append((key, what))

    def default(self, key, value):
        self.defaults.append((key, value))

    def warning(self):
        """One line naming every key that does not carry over, or None when all do."""
        parts = []
        if self.unmodelled:
            parts.append("not modelled by pimdram: " + "; ".join(f"{k}: {w}" for k, w in self.unmodelled))
        if self.unused:
            parts.append(f"ignored by {self.simulator} itself: " + "; ".join(f"{k}: {w}" for k, w in self.unused))
        if not parts:
            return None
        return f"{self.source}: " + " | ".join(parts)

    def comment(self):
        """The report as YAML comment lines (the header of an imported file)."""
        lines = [f"Imported from {self.simulator} configuration {self.source} by `pimdram config import`."]
        sections = (("Not modelled by pimdram", self.unmodelled),
                    (f"Ignored by {self.simulator} itself", self.unused),
                    ("Notes", self.notes),
                    (f"Absent from the file: {self.simulator}'s defaults", [(k, f"{v}") for k, v in self.defaults]))
        for title, items in sections:
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  {k}: {w}" for k, w in items)
        return "".join(f"# {line}\n" for line in lines)
