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
BITTENCOURT_2010 = (
    "Bittencourt, Sakellariou & Madeira, 'DAG scheduling using a lookahead variant of the "
    "Heterogeneous Earliest Finish Time algorithm', PDP 2010"
)
ARABNEJAD_2014 = (
    "Arabnejad & Barbosa, 'List scheduling algorithm for heterogeneous systems by an optimistic "
    "cost table', IEEE TPDS 25(3), 2014"
)
AUGONNET_2011 = (
    "Augonnet, Thibault, Namyst & Wacrenier, 'StarPU: a unified platform for task scheduling on "
    "heterogeneous multicore architectures', CCPE 23(2), 2011"
)
AGULLO_2016 = (
    "Agullo, Beaumont, Eyraud-Dubois & Kumar, 'Are static schedules so bad? A case study on "
    "Cholesky factorization', IPDPS 2016"
)
AUGONNET_2009 = (
    "Augonnet, Thibault & Namyst, 'Automatic calibration of performance models on heterogeneous "
    "multicore architectures', Euro-Par 2009 Workshops, LNCS 6043"
)
