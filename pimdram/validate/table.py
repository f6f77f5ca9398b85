"""The text table of `pimdram validate`: one line per claim (claim, paper figure, pimdram figure,
ratio), then what each figure was formed from."""


def _x(value):
    return f"{value:.2f}x"


def format_table(rows, detail=True):
    """The rows of run_claims as a fixed-width table; with `detail`, each claim's points below it."""
    head = ("claim", "paper", "pimdram", "ratio", "")
    lines = []
    for r in rows:
        name = r["name"] + (f" [{r['variant']}]" if r.get("variant") else "")
        paper = (">" if r["bound"] == "at least" else "") + _x(r["reference"])
        note = "overcommitted" if any(p["overcommitted"] for p in r["points"]) else ""
        lines.append((name, paper, _x(r["pimdram"]), f"{r['ratio']:.2f}", note))
    widths = [max(len(str(x[i])) for x in [head] + lines) for i in range(4)]
    out = ["  ".join([head[0].ljust(widths[0])] + [h.rjust(w) for h, w in zip(head[1:4], widths[1:])]).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for r, line in zip(rows, lines):
        out.append("  ".join([line[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(line[1:4], widths[1:])]
                             + ([line[4]] if line[4] else [])))
    if not detail:
        return "\n".join(out)
    out.append("")
    for r in rows:
        how = {"max": "largest ratio", "geomean": "geometric mean", "single": "ratio"}[r["aggregate"]]
        title = f"{r['name']}" + (f" [{r['variant']}]" if r.get("variant") else "")
        out.append(f"{title}: {r['claim']}; {r['system']} against {r['baseline']}, {how} of {len(r['points'])} "
                   f"point{'s' if len(r['points']) != 1 else ''} ({r['metric'].replace('_', ' ')})")
        for p in r["points"]:
            setup = f"{p['model']} b{p['batch']} {p['prompt']}+{p['output']}"
            if p["speculation"] != 1:
                setup += f" spec {p['speculation']}"
            setup += f" decode at {p['context']}" if p["phase"] == "mean-decode" else " generation"
            if p.get("stream", 1) != 1:
                setup += f"s, a stream of {p['stream']}"
            over = f"  (overcommitted: {', '.join(p['overcommitted'])})" if p["overcommitted"] else ""
            out.append(f"    {setup}: {p['system_value']:.4g} / {p['baseline_value']:.4g} {p['unit']} -> "
                       f"{p['ratio']:.2f}x{over}")
    return "\n".join(out)
