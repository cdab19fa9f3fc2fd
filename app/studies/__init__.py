"""Studies: a grid of parameter cells x R seeded repetitions of a run, and what they add up to.

Pure functions only (numpy, scipy); the fan-out and the one aggregation are use cases in
`app/services`.
"""
