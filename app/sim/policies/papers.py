"""The papers the literature's policies come from, as `Policy.paper` cites them."""

BRAUN_2001 = (
    "Braun et al., 'A comparison of eleven static heuristics for mapping a class of independent "
    "tasks onto heterogeneous distributed computing systems', JPDC 61(6), 2001"
)
MAHESWARAN_1999 = (
    "Maheswaran et al., 'Dynamic mapping of a class of independent tasks onto heterogeneous "
    "computing systems', JPDC 59(2), 1999"
)
TOPCUOGLU_2002 = (
    "Topcuoglu, Hariri & Wu, 'Performance-effective and low-complexity task scheduling for "
    "heterogeneous computing', IEEE TPDS 13(3), 2002"
)
ARABNEJAD_2014 = (
    "Arabnejad & Barbosa, 'List scheduling algorithm for heterogeneous systems by an optimistic "
    "cost table', IEEE TPDS 25(3), 2014"
)
