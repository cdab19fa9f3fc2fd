"""`hms profile measure`: time the tile kernels of dense Cholesky, LU and QR on this machine's
CPU, alone and with every core busy, and write a kernel profile (schema_version 1).

An adapter at the edge: it runs real BLAS/LAPACK through SciPy; the simulator (app.sim) only
reads the profiles it writes.
"""
