"""NeuPIMs in the engine: with dual row buffers a normal read proceeds during a GEMV; with one
row buffer (blocked mode) it waits until the PIM program has run. Both logs pass the checker."""
from pim_programs import PimRun


def neupims_gemv(n_comps=40, row=5):
    program = [(0, "GWRITE", (), 0, 0, 0)]
    program += [(0, "G_ACT", (pc, bg), 0, row, 0) for pc in range(2) for bg in range(4)]
    program += [(0, "COMP", (), 0, row, 1)] * n_comps
    program += [(0, "READRES", (), 0, 0, 0), (0, "PIM_PRE", (), 0, 0, 0)]
    return program


READ = dict(bank=(0, 1, 2), row=3, column=1)


def read_arriving_during_the_gemv(design):
    alone = PimRun(design, neupims_gemv())
    arrival = alone.cycles("COMP")[2]        # the read arrives while the COMPs run
    return alone, PimRun(design, neupims_gemv(), accesses=[dict(READ, arrival=arrival)]), arrival


def test_dual_row_buffer_lets_a_normal_read_through_during_the_gemv():
    alone, run, arrival = read_arriving_during_the_gemv("neupims")
    read, = run.cycles("RD")
    assert arrival < read < run.cycles("COMP")[-1]
    # the GEMV loses only the command-bus slot the read takes (the program yields turns)
    assert run.cycles("PIM_PRE")[0] - alone.cycles("PIM_PRE")[0] == 1
    run.check()


def test_single_row_buffer_makes_the_read_wait_for_the_program():
    alone, run, arrival = read_arriving_during_the_gemv("neupims-blocked")
    read, = run.cycles("RD")
    assert read > run.cycles("PIM_PRE")[0] > arrival
    run.check()


def test_gemv_timing_follows_neupims_rules():
    run = PimRun("neupims", neupims_gemv(n_comps=10))
    t = run.spec.timing
    gwrite, = run.cycles("GWRITE")
    acts = run.cycles("G_ACT")
    comps = run.cycles("COMP")
    assert [b - a for a, b in zip(acts, acts[1:])] == [t["nFAW"]] * 7
    assert comps[0] - acts[-1] == t["nRCD"]
    assert comps[0] - gwrite >= t["nGWRITE"]
    assert [b - a for a, b in zip(comps, comps[1:])] == [max(t["nCCD_S"], 1)] * 9
    run.check()
